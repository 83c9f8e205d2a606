"""LCB / CAM blocks (paper Fig. 2 (c), (d)) and the on-board MAC budget (issue #2, item 3)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cosmic.flops import count_flops, onboard_cost
from cosmic.onboard.codec import LightweightEncoder
from cosmic.onboard.layers import CAM, LCB


def test_lcb_shapes_and_cost():
    x = torch.rand(1, 64, 32, 32)
    lcb = LCB(64, 96, kernel_size=5, stride=2)
    assert lcb(x).shape == (1, 96, 16, 16)
    # depthwise 5x5 + 1x1 to half + depthwise 3x3 on the half, per output pixel
    expected_macs = 16 * 16 * (64 * 25 + 64 * 48 + 48 * 9)
    assert count_flops(lcb, x) // 2 == expected_macs
    dense = nn.Conv2d(64, 96, 5, stride=2, padding=2)
    assert count_flops(dense, x) > 8 * count_flops(lcb, x)
    with pytest.raises(ValueError):
        LCB(8, 7)


def test_cam_shapes_and_gating():
    cam = CAM(32, kernel_size=7)
    x = torch.rand(2, 32, 15, 17)  # odd sizes: pooled with ceil_mode, upsampled back
    out = cam(x)
    assert out.shape == x.shape
    # the attention branch is a sigmoid gate: |CAM(x)| <= |LCB(x)| everywhere
    assert (out.abs() <= cam.local(x).abs() + 1e-6).all()


def test_encoder_layout():
    enc = LightweightEncoder(N=32, M=48)
    y = enc(torch.rand(1, 3, 128, 192))
    assert y.shape == (1, 48, 8, 12)
    kinds = [type(m).__name__ for m in enc]
    assert kinds == ["LCB", "GDN", "LCB", "GDN", "CAM", "LCB", "GDN", "CAM", "LCB"]


def test_paper_preset_onboard_budget():
    cosmic = onboard_cost("cosmic", 256, "paper")
    bmshj = onboard_cost("bmshj2018-hyperprior", 256)
    assert cosmic.macs <= 2.5e9, cosmic.macs
    assert bmshj.macs >= 3 * cosmic.macs, (bmshj.macs, cosmic.macs)
    # sanity: the bmshj2018 (N=192, M=320) analysis side is well known to be ~6.5 GMACs at 256x256
    assert 6.0e9 < bmshj.macs < 7.5e9
    # w/o CAM (Fig. 6 ablation): the CAMs cost something, but a small share of E
    no_cam = onboard_cost("cosmic", 256, "paper", cams=False)
    assert 0.7 * cosmic.macs < no_cam.macs < cosmic.macs
    # the small preset's baseline is CompressAI's low-rate width (N=128, M=192), still dearer than COSMIC
    small_bmshj = onboard_cost("bmshj2018-hyperprior", 256, "small")
    assert small_bmshj.name == "bmshj2018-hyperprior (small)" and small_bmshj.macs < bmshj.macs / 2
    assert small_bmshj.macs > 2 * onboard_cost("cosmic", 256, "small").macs


def test_flops_cli(cli):
    code, out, _ = cli("flops", "--preset", "paper", "--no-baselines")
    assert code == 0 and "cosmic (paper)" in out and "w/o CAM" in out


def test_variable_rate_on_board_cost_stays_under_budget():
    fixed = onboard_cost("cosmic", 256, "paper")
    variable = onboard_cost("cosmic", 256, "paper", variable_rate=True)
    # YCbCr (9 MACs/px), colour shortcut (3·M per latent pixel) and gains (M per latent value)
    assert fixed.macs < variable.macs < fixed.macs * 1.001
    assert variable.macs <= 2.5e9  # issue 13's on-board budget for the paper preset


def test_wider_onboard_encoder_costs_only_in_e(cli, one_line_error):
    """--onboard-channels K counts E at K channels; the hyperprior (at N) costs what it did. The
    small preset's E at 2N (256) stays under the paper preset's 2.5 GMACs budget."""
    from cosmic.flops import _cosmic_onboard

    x = torch.rand(1, 3, 256, 256)
    costs, e_only = {}, {}
    for k in (None, 192, 256):
        costs[k] = onboard_cost("cosmic", 256, "small", onboard_channels=k)
        e_only[k] = count_flops(_cosmic_onboard("small", onboard_channels=k).g_a, x) // 2
    assert costs[192].name == "cosmic (small, E 192)"
    for k in (192, 256):
        assert costs[k].macs - e_only[k] == costs[None].macs - e_only[None]  # h_a + h_s unchanged
    assert costs[None].macs < costs[192].macs < costs[256].macs <= 2.5e9
    code, out, _ = cli("flops", "--preset", "small", "--no-baselines", "--onboard-channels", "192")
    assert code == 0 and "E 192" in out
    code, _, err = cli("flops", "--onboard-channels", "7")
    one_line_error(code, err, "--onboard-channels 7")
