"""The shared training loop (cosmic.training.loop): exact resume through its checkpoints, its
cadence (logging windows, checkpoints, pause), terms that appear mid-run."""

from __future__ import annotations

import json

import torch

from cosmic.training.checkpoint import make_ema
from cosmic.training.loop import Cadence, Task, TrainLoop, mean_terms
from cosmic.training.metrics_log import MetricsLog, read_metrics


class _Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 1)

    def save_pretrained(self, directory, **_):  # what save_checkpoint calls
        from safetensors.torch import save_file

        directory.mkdir(parents=True, exist_ok=True)
        save_file(self.state_dict(), str(directory / "model.safetensors"))
        (directory / "config.json").write_text("{}")

    def update(self, force=False):
        pass


class _Regression(Task):
    """y = x·w with noise drawn from torch's RNG (so a resume must restore it)."""

    def __init__(self, loop: TrainLoop):
        self.loop, self.model = loop, _Linear()
        self.optimizers = {"main": torch.optim.Adam(self.model.parameters(), lr=0.05)}
        self.ema = make_ema(self.model, 0.9)

    def step(self, batch, step: int) -> dict:
        x = batch
        y = x.sum(1, keepdim=True) + 0.01 * torch.randn(x.shape[0], 1)
        loss = torch.nn.functional.mse_loss(self.model.lin(x), y)
        self.optimizers["main"].zero_grad()
        self.loop.optimise(loss, self.optimizers["main"])
        terms = {"loss": float(loss.detach())}
        if step >= 3:  # a term that starts mid-run (a GAN's)
            terms["late"] = 1.0
        return terms


def _batches(first: int):
    step = first
    while True:
        yield torch.rand(8, 4, generator=torch.Generator().manual_seed(step))  # a function of the step
        step += 1


def _run(out, steps, pause_at=None):
    torch.manual_seed(0)
    loop = TrainLoop(Cadence(steps, checkpoint_every=4, log_every=2, pause_at=pause_at), out / "last", progress=False)
    task = _Regression(loop)
    state = loop.resume(task, {"step": 0, "history": []})
    step = loop.run(task, _batches(int(state["step"])), state, MetricsLog(out, int(state["step"]), tensorboard=False))
    return step, task


def test_paused_and_resumed_run_is_bit_identical(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert _run(tmp_path / "a", 10)[0] == 10
    assert _run(tmp_path / "b", 10, pause_at=5)[0] == 5
    assert json.loads((tmp_path / "b" / "last" / "trainer.json").read_text())["step"] == 5
    _, resumed = _run(tmp_path / "b", 10)
    _, straight = _run(tmp_path / "a", 10)  # a finished run resumes at its end: nothing trained
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(straight.ema.module.state_dict().values(), resumed.ema.module.state_dict().values()):
        assert torch.equal(a, b)
    rows = read_metrics(tmp_path / "b" / "metrics.csv")
    assert [s for s, n, _ in rows if n == "train/loss"] == [2, 4, 6, 8, 10]  # each step once, the pause's dropped
    assert [s for s, n, _ in rows if n == "train/late"] == [4, 6, 8, 10]


def test_mean_terms_over_the_steps_that_have_each_term():
    assert mean_terms([{"a": 1.0}, {"a": 3.0, "g": 2.0}]) == {"a": 2.0, "g": 2.0}


def test_no_checkpoint_directory_writes_none(tmp_path):
    loop = TrainLoop(Cadence(3, checkpoint_every=1), None, progress=False)
    task = _Regression(loop)
    assert loop.run(task, _batches(0), {"step": 0}) == 3
    assert not any(tmp_path.iterdir())
