"""Ground-only upgrade (`cosmic train stage1 --ground-only`): a wider ground decoder starts as the
old one exactly, and training it leaves the on-board codec, hence every bitstream, untouched."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from cosmic.models.cosmic import Cosmic
from cosmic.training.stage1 import Stage1Config, train_stage1
from cosmic.training.widen import widen_ground_state


def _tiny(ground_channels: int) -> Cosmic:
    return Cosmic(N=16, M=16, ground_channels=ground_channels, rate_levels=3, gain_span=1.0)


def test_widened_ground_decodes_exactly_as_before():
    torch.manual_seed(0)
    narrow, wide = _tiny(8).eval(), _tiny(20).eval()
    for p in narrow.parameters():  # not the initial state: every old weight must find its place
        p.data.add_(0.01 * torch.randn_like(p))
    wide.load_state_dict(widen_ground_state(wide, narrow.state_dict(), 8, 20))
    assert wide.ground.decoder[0].weight.shape == (20, 24, 5, 5)
    x, q = torch.rand(2, 3, 64, 64), torch.tensor([1.0, 2.5])
    with torch.no_grad():
        a, b = narrow(x, q), wide(x, q)
    for key in ("x_hat", "x_hat_est", "z0_est", "z0_mu"):
        assert torch.allclose(a[key], b[key], atol=1e-6), key
    with pytest.raises(ValueError, match="narrow"):
        widen_ground_state(narrow, wide.state_dict(), 20, 8)


@pytest.mark.slow
def test_ground_only_run_keeps_the_onboard_codec(tiny_data, tmp_path, monkeypatch):
    import cosmic.models.registry as reg

    monkeypatch.setitem(reg.PRESETS, "small", {"N": 16, "M": 16, "ground_channels": 8, "latent_channels": 4})
    torch.manual_seed(0)
    source = tmp_path / "source"
    model = _tiny(8)
    model.update(force=True)
    model.save_pretrained(source)
    cfg = Stage1Config(data=str(tiny_data), out=str(tmp_path / "refit"), preset="small", steps=3, batch_size=2,
                       crop=64, lr=1e-3, val_every=10**6, checkpoint_every=5, channels_last=False,
                       rate_lambdas=[0.001, 0.004, 0.016], init_from=str(source), ground_only=True,
                       ground_channels=12, val_images=1)
    final = Cosmic.from_pretrained(train_stage1(cfg, progress=False))
    before = Cosmic.from_pretrained(source)
    assert final.config["ground_channels"] == 12
    for (name, p), (_, p0) in zip(final.onboard.named_parameters(), before.onboard.named_parameters()):
        assert torch.equal(p, p0), name
    x = torch.rand(1, 3, 64, 64)
    assert final.compress(x, quality=2.0)["strings"] == before.compress(x, quality=2.0)["strings"]
    changed = [n for n, p in final.ground.state_dict().items() if n.startswith("decoder.") and p.ndim == 4]
    assert changed and not torch.equal(final.ground.decoder[0].weight[:8, :8],
                                       before.ground.decoder[0].weight[:8, :8])
    trainer = json.loads((tmp_path / "refit" / "last" / "trainer.json").read_text())
    assert set(trainer["optimizer_steps"]) == {"main"}  # no aux optimizer: the entropy models are frozen
    from cosmic.errors import InputError

    with pytest.raises(InputError, match="--ground-only"):
        train_stage1(dataclasses.replace(cfg, init_from=None, out=str(tmp_path / "x")), progress=False)


def test_gain_units_get_their_own_learning_rate(tiny_data, tmp_path, monkeypatch):
    """--gain-lr-scale: Adam's first step moves every parameter by about its group's lr, so the
    gains (lr x 10) move ten times as far as the transforms (lr)."""
    import cosmic.models.registry as reg

    monkeypatch.setitem(reg.PRESETS, "small", {"N": 16, "M": 16, "ground_channels": 8, "latent_channels": 4})
    torch.manual_seed(0)
    source = tmp_path / "source"
    _tiny(8).save_pretrained(source)
    cfg = Stage1Config(data=str(tiny_data), out=str(tmp_path / "run"), preset="small", steps=1, batch_size=2,
                       crop=64, lr=1e-3, val_every=10**6, checkpoint_every=5, channels_last=False,
                       rate_lambdas=[0.001, 0.004, 0.016], init_from=str(source), gain_lr_scale=10.0,
                       ground_channels=8, val_images=1)
    after, before = Cosmic.from_pretrained(train_stage1(cfg, progress=False)), Cosmic.from_pretrained(source)
    moved = {n: float((p.detach() - before.state_dict()[n]).abs().max()) for n, p in after.named_parameters()
             if not n.endswith(".quantiles")}
    gains = [v for n, v in moved.items() if "gain." in n]
    others = [v for n, v in moved.items() if "gain." not in n]
    assert len(gains) == 2 and min(gains) == pytest.approx(1e-2, rel=0.05)
    assert max(others) <= 1.05e-3
