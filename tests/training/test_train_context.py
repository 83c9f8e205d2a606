"""Issue 30 item 2: training a context on a frozen model (cosmic.training.context); the
channel-wise context's training path."""

from __future__ import annotations

import pytest
import torch
from helpers import TINY_MODEL

from cosmic.onboard.context import ChannelWiseContext
from cosmic.training.context import ContextConfig, train_context


def test_channel_wise_context_starts_as_the_hyperprior_and_reads_only_earlier_slices():
    gen = torch.Generator().manual_seed(0)
    scales = torch.rand(2, 16, 6, 6, generator=gen) + 0.1
    means, y = torch.randn(2, 16, 6, 6, generator=gen), 3 * torch.randn(2, 16, 6, 6, generator=gen)
    ctx = ChannelWiseContext(16, slices=4)
    s, m, y_hat = ctx.training_parameters(scales, means, y)
    assert torch.equal(s, scales) and torch.equal(m, means)  # zero-initialised residual
    assert torch.equal(y_hat, torch.round(y - means) + means)
    for p in ctx.parameters():
        p.data = 0.1 * torch.randn(p.shape, generator=gen)
    s, m, y_hat = ctx.training_parameters(scales, means, y)
    assert torch.equal(y_hat, torch.round(y - m) + m)  # each group rounded around its own means
    later = y.clone()
    later[:, 8:] += 3.3  # groups 2 and 3 change
    s2, m2, _ = ctx.training_parameters(scales, means, later)
    assert torch.equal(s[:, :12], s2[:, :12]) and torch.equal(m[:, :12], m2[:, :12])  # groups 0-2 read 0-1
    assert not torch.equal(s[:, 12:], s2[:, 12:])  # group 3 reads group 2
    assert torch.equal(s[:, :4], scales[:, :4])  # group 0: the hyperprior's own
    with pytest.raises(ValueError, match="slices"):
        ChannelWiseContext(18, slices=4)


@pytest.mark.parametrize("kind", ["checkerboard", "channel"])
def test_train_context_trains_only_the_context(tiny_data, tmp_path, kind):
    cfg = ContextConfig(model=str(TINY_MODEL), data=str(tiny_data), out=str(tmp_path / kind), split="train",
                        steps=4, stop_at=3, batch_size=2, crop=64, log_every=1, kind=kind)
    out = train_context(cfg)
    rows = (tmp_path / kind / "metrics.csv").read_text().splitlines()
    assert rows[0] == "step,wall_s,y_bpp" and [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3"]
    assert all(float(r.split(",")[2]) > 0 for r in rows[1:])
    from cosmic.models.cosmic import Cosmic

    model = Cosmic.from_pretrained(out)
    plain = Cosmic.from_pretrained(TINY_MODEL)
    assert model.onboard.config["context"] == kind
    ground = dict(plain.ground.state_dict())
    assert all(torch.equal(v, ground[k]) for k, v in model.ground.state_dict().items())  # frozen
    onboard = dict(plain.onboard.state_dict())
    assert all(torch.equal(v, onboard[k]) for k, v in model.onboard.state_dict().items()
               if not k.startswith("context_model."))  # only the context trained
