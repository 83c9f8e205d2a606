"""DDP under torchrun (gloo, CPU): two processes train like one with the same global batch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, WORKERS
from cosmic.utils.pretrained import read_weights

from cosmic.training.distributed import StepSampler, shard_positions
from cosmic.training.metrics_log import read_metrics

WORKER = WORKERS / "ddp_stage1.py"
SRC = str(REPO / "src")
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "0",
            "--rdzv-backend", "c10d", "--rdzv-endpoint", "localhost:0"]


def test_shard_positions_cover_the_batch_once():
    assert shard_positions(8, 0, 1) == list(range(8))
    parts = [shard_positions(8, r, 2) for r in range(2)]
    assert parts == [[0, 1, 4, 5], [2, 3, 6, 7]]  # a slice of each half: the split decoder's halves
    assert sorted(parts[0] + parts[1]) == list(range(8))
    # step s, position p -> index s*batch + p, whatever the world size (resume with another one)
    one = list(StepSampler(3, 8, total=8 * 5))
    two = sorted(list(StepSampler(3, 8, 0, 2, total=8 * 5)) + list(StepSampler(3, 8, 1, 2, total=8 * 5)))
    assert one == two == list(range(24, 40))


def _run(args: list[str], cwd: Path) -> None:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _losses(out: Path) -> list[float]:
    return [v for _, name, v in read_metrics(out / "metrics.csv") if name == "train/loss"]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(),
                    reason="torchrun not installed")
def test_two_processes_match_one(tiny_data, tmp_path):
    """torchrun --nproc-per-node 2 (gloo) with a global batch of 4 gives, step by step, the loss
    of one process with a batch of 4, and the same weights after 3 steps; then the 2-process run
    resumes on 1 process."""
    steps = 3
    _run([sys.executable, str(WORKER), str(tiny_data), str(tmp_path / "one"), str(steps)], tmp_path)
    torchrun = TORCHRUN
    _run(torchrun + [str(WORKER), str(tiny_data), str(tmp_path / "two"), str(steps)], tmp_path)
    one, two = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert len(one) == len(two) == steps
    assert one == pytest.approx(two, rel=1e-5)
    assert one[0] != one[-1]  # it trained
    a = read_weights(tmp_path / "one" / "last")
    b = read_weights(tmp_path / "two" / "last")
    worst = max(float((a[k] - b[k]).abs().max()) for k in a if a[k].is_floating_point())
    assert worst < 1e-4
    # resume the 2-process run on one process: continues from step 3 to 5
    _run([sys.executable, str(WORKER), str(tiny_data), str(tmp_path / "two"), "5"], tmp_path)
    assert [s for s, n, _ in read_metrics(tmp_path / "two" / "metrics.csv") if n == "train/loss"] == [1, 2, 3, 4, 5]


@pytest.mark.slow
def test_stage2_under_torchrun(tiny_data, tmp_path):
    """Two gloo processes train stage 2: one scale for both ranks, rank 0 writes the checkpoint,
    the log and the final model; the run resumes on one process."""
    from helpers import TINY_MODEL

    from cosmic.ground.diffusion.sampler import DiffusionCompensator

    worker = WORKER.with_name("ddp_stage2.py")
    torchrun = TORCHRUN
    out = tmp_path / "run"
    _run(torchrun + [str(worker), str(TINY_MODEL), str(tiny_data), str(out), "2"], tmp_path)
    comp = DiffusionCompensator.from_pretrained(out / "final")
    assert comp.latent_scale > 0
    _run([sys.executable, str(worker), str(TINY_MODEL), str(tiny_data), str(out), "3"], tmp_path)
    assert [s for s, n, _ in read_metrics(out / "metrics.csv") if n == "train/loss"] == [1, 2, 3]
