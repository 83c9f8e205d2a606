"""cosmic.training.checkpoint: the weight EMA."""

from __future__ import annotations

import torch

from cosmic.training.checkpoint import make_ema


def test_the_ema_keeps_a_frozen_parameter_bit_for_bit():
    """A --ground-only run froze the on-board codec, but its EMA lerped the frozen weights towards
    themselves from another starting copy: the shipped EMA's on-board digest changed by a few
    ulps, and the existing bitstreams no longer named it (found in the tenth session)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))
    ema = make_ema(model, 0.999)  # the average's copy is taken here ...
    with torch.no_grad():  # ... and the weights change after (an --init-from load, a widening)
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 1e-3 + 1.0 / 3.0)
    model[0].requires_grad_(False)
    for _ in range(5):
        ema.update_parameters(model)
    assert torch.equal(ema.module[0].weight, model[0].weight) and torch.equal(ema.module[0].bias, model[0].bias)
    assert not torch.equal(ema.module[1].weight, model[1].weight)  # a trained parameter is averaged
