"""Ground-only upgrade (`cosmic train stage1 --ground-only`): a wider ground decoder starts as the
old one exactly, and training it leaves the on-board codec, hence every bitstream, untouched.
Widening E (`--onboard-channels`): the wider E writes the narrow one's bitstreams, and its new
channels learn."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from cosmic.errors import InputError
from cosmic.models.cosmic import Cosmic
from cosmic.training.losses import Stage1Loss
from cosmic.training.stage1 import Stage1Config, train_stage1
from cosmic.training.widen import widen_ground_state, widen_onboard_state


def _tiny(ground_channels: int, **kwargs) -> Cosmic:
    return Cosmic(N=16, M=16, ground_channels=ground_channels, rate_levels=3, gain_span=1.0, **kwargs)


def _narrow_and_wide() -> tuple[Cosmic, Cosmic]:
    """A tiny model whose E has 16 channels (perturbed, with a y spread over many quantisation
    steps) and the same model with E widened to 24, both with entropy tables."""
    torch.manual_seed(0)
    narrow, wide = _tiny(8, colour_shortcut=True).eval(), _tiny(8, colour_shortcut=True, onboard_channels=24).eval()
    for p in narrow.parameters():
        p.data.add_(0.01 * torch.randn_like(p))
    narrow.onboard.g_a[-1].pointwise.weight.data.mul_(40.0)
    wide.load_state_dict(widen_onboard_state(wide, narrow.state_dict(), 16, 24))
    narrow.update(force=True)
    wide.update(force=True)
    return narrow, wide


def test_widened_onboard_encoder_writes_the_same_bitstreams():
    narrow, wide = _narrow_and_wide()
    e = wide.onboard.g_a
    assert e[0].pointwise.weight.shape == (12, 24, 1, 1) and e[1].gamma.shape == (24, 24)
    assert e[4].horizontal.weight.shape == (24, 1, 1, 7) and e[8].pointwise.weight.shape == (8, 24, 1, 1)
    assert wide.onboard.entropy_bottleneck.quantiles.shape[0] == 16  # z keeps N = 16 channels
    new = torch.arange(8, 12)  # the new primary channels of the first LCB: random, not zero
    assert e[0].pointwise.weight[new].abs().min() > 0
    x = torch.rand(2, 3, 128, 128)
    lengths = []
    for q in (1.0, 1.6, 2.5, 3.0):
        a, b = narrow.compress(x, quality=q), wide.compress(x, quality=q)
        assert a["strings"] == b["strings"], q
        lengths.append(len(a["strings"][0][0]))
        da = narrow.decompress(a["strings"], a["shape"], quality=q)["x_hat"]
        db = wide.decompress(b["strings"], b["shape"], quality=q)["x_hat"]
        assert torch.equal(da, db), q
    assert lengths[0] > 20 and lengths == sorted(lengths) and lengths[0] < lengths[-1]  # real, rate-dependent strings
    with torch.no_grad():
        assert torch.equal(narrow.onboard.analysis(x, 2.0), wide.onboard.analysis(x, 2.0))


def test_new_onboard_channels_learn():
    """The new channels' weights out of them start at zero and those into them random: Adam's first
    step moves the zero ones (the new channels carry a signal), its second the random ones."""
    _, wide = _narrow_and_wide()
    wide.train()
    e = wide.onboard.g_a
    probes = {"out of new channels": lambda: e[8].pointwise.weight[:, 8:12],  # last LCB, new primary inputs
              "GDN: new into old": lambda: e[1].gamma[:8, 8:12],
              "into new channels": lambda: e[2].pointwise.weight[8:12]}
    history = [{k: f().detach().clone() for k, f in probes.items()}]
    optimizer = torch.optim.Adam([p for n, p in wide.named_parameters() if not n.endswith("quantiles")], lr=1e-3)
    loss_fn, x = Stage1Loss(0.01), torch.rand(2, 3, 64, 64)
    for _ in range(2):
        optimizer.zero_grad()
        loss_fn(wide(x, torch.tensor([1.0, 3.0])), x)["loss"].backward()
        optimizer.step()
        history.append({k: f().detach().clone() for k, f in probes.items()})
    assert float(history[0]["out of new channels"].abs().max()) == 0.0
    moved = [{k: float((h[k] - prev[k]).abs().min()) for k in probes} for prev, h in zip(history, history[1:])]
    assert moved[0]["out of new channels"] > 1e-4 and moved[0]["GDN: new into old"] > 0
    assert moved[0]["into new channels"] == 0.0 and moved[1]["into new channels"] > 1e-5


def test_onboard_widening_refuses_to_narrow():
    narrow, wide = _narrow_and_wide()
    with pytest.raises(ValueError, match="cannot narrow the on-board encoder from 24 to 16"):
        widen_onboard_state(narrow, wide.state_dict(), 24, 16)


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


def test_stage1_init_from_widens_the_onboard_encoder(tiny_data, tmp_path, monkeypatch, cli, one_line_error):
    """`--init-from MODEL --onboard-channels 24`: the run starts from the narrow model's bitstreams
    exactly (zero steps here); a narrower E than the source's is a one-line error."""
    import cosmic.models.registry as reg

    monkeypatch.setitem(reg.PRESETS, "small", {"N": 16, "M": 16, "ground_channels": 8, "latent_channels": 4})
    narrow, _ = _narrow_and_wide()
    narrow.save_pretrained(tmp_path / "narrow")
    cfg = Stage1Config(data=str(tiny_data), out=str(tmp_path / "wide"), preset="small", steps=0, batch_size=2,
                       crop=64, val_every=10**6, channels_last=False, rate_lambdas=[0.001, 0.004, 0.016],
                       colour_shortcut=True, init_from=str(tmp_path / "narrow"), onboard_channels=24,
                       ground_channels=8, val_images=1)
    wide = Cosmic.from_pretrained(train_stage1(cfg, progress=False)).eval()
    assert wide.config["onboard_channels"] == 24 and wide.onboard.g_a[0].pointwise.weight.shape[0] == 12
    x = torch.rand(1, 3, 128, 128)
    assert wide.compress(x, quality=2.0)["strings"] == narrow.compress(x, quality=2.0)["strings"]
    code, _, err = cli("train", "stage1", "--data", tiny_data, "--out", tmp_path / "narrowed", "--init-from",
                       tmp_path / "wide" / "final", "--rate-lambdas", "0.001,0.004,0.016", "--colour-shortcut",
                       "--ground-channels", "8", "--steps", "1", "--threads", "1")
    one_line_error(code, err, "on-board encoder has 24 channels", "--onboard-channels 16 would narrow")
    assert code == 2
    with pytest.raises(InputError, match="positive even"):
        train_stage1(dataclasses.replace(cfg, onboard_channels=23), progress=False)
    with pytest.raises(InputError, match="--ground-only keeps the on-board codec"):
        train_stage1(dataclasses.replace(cfg, ground_only=True), progress=False)


def test_ground_only_takes_the_source_models_onboard_width(tiny_data, tmp_path, monkeypatch):
    """`--ground-only` from a model whose E was widened past the preset's N (the shipped default:
    E 256, small preset N 128): the run keeps that E without being told its width (it used to
    build E at the preset's N and refuse the source as 'narrowing'); a different
    ``--onboard-channels`` is still refused."""
    import cosmic.models.registry as reg

    monkeypatch.setitem(reg.PRESETS, "small", {"N": 16, "M": 16, "ground_channels": 8, "latent_channels": 4})
    _, wide = _narrow_and_wide()
    wide.save_pretrained(tmp_path / "wide-e")
    cfg = Stage1Config(data=str(tiny_data), out=str(tmp_path / "refit"), preset="small", steps=1, batch_size=2,
                       crop=64, val_every=10**6, channels_last=False, rate_lambdas=[0.001, 0.004, 0.016],
                       colour_shortcut=True, init_from=str(tmp_path / "wide-e"), ground_only=True,
                       ground_channels=12, val_images=1)
    refit = Cosmic.from_pretrained(train_stage1(cfg, progress=False)).eval()
    assert refit.config["onboard_channels"] == 24 and refit.config["ground_channels"] == 12
    x = torch.rand(1, 3, 64, 64)
    assert refit.compress(x, quality=2.0)["strings"] == wide.compress(x, quality=2.0)["strings"]
    with pytest.raises(InputError, match="E 24 wide"):
        train_stage1(dataclasses.replace(cfg, onboard_channels=32, out=str(tmp_path / "x")), progress=False)
