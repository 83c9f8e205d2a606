"""What a wider on-board encoder E costs per stage-1 training step (``--onboard-channels``).

    PYTHONPATH=src .venv/bin/python benchmarks/onboard_width_step.py [--widths 128,192,256]
        [--steps 6] [--rounds 2] [--threads 1] [--init-from cosmic-small-vr] [--json OUT]

Each width runs the trainer's own step (``stage1.Stage1Task.step``: forward, the loss at per-sample λ,
backward, gradient clipping, Adam, the aux step) on UC Merced train crops, batch 8, crop 128, with
the shipped variable-rate campaign's configuration (small preset, six λs, colour shortcut), started
with ``--init-from`` the shipped model (E widened by ``widen_onboard_state``, so the run set-up is
the real one). Widths are interleaved over ``--rounds`` and each width's best round is kept
(shared CPUs). Reported per step: wall seconds and this process's CPU seconds (less disturbed by
other jobs on a shared machine), and the ratio to the first width.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from cosmic.training import distributed as ddp
from cosmic.training.data import ImageFolder
from cosmic.training.stage1 import Stage1Config, Stage1Task, initial_state, stage1_loop

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ucmerced"
LAMBDAS = [0.00008, 0.0003, 0.001, 0.0033, 0.011, 0.04]  # the shipped campaign's


def time_width(width: int, args, crops, out: Path) -> dict:
    """Seconds per step (wall, CPU) of ``args.steps`` steps after one warm-up step."""
    torch.manual_seed(0)
    out.mkdir(parents=True)
    cfg = Stage1Config(data=str(DATA), out=str(out), preset="small", rate_lambdas=LAMBDAS, colour_shortcut=True,
                       onboard_channels=width, init_from=args.init_from, channels_last=False, batch_size=8,
                       crop=128, threads=args.threads, lr=1e-4)
    loop = stage1_loop(cfg, ddp.DistInfo(), progress=False)
    task = Stage1Task(cfg, loop)
    initial_state(cfg, task, loop, resume=False)  # --init-from: the shipped model's weights, E widened
    task.train_mode()
    batches = iter(torch.utils.data.DataLoader(crops, batch_size=8))
    task.step(next(batches), 0)  # warm-up
    wall, cpu = time.perf_counter(), time.process_time()
    for step in range(1, args.steps + 1):
        task.step(next(batches), step)
    return {"onboard_channels": width, "wall_s_per_step": (time.perf_counter() - wall) / args.steps,
            "cpu_s_per_step": (time.process_time() - cpu) / args.steps}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--widths", default="128,192,256")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--init-from", default="cosmic-small-vr")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    crops = ImageFolder(DATA, "train", crop=128, samples_per_epoch=10**9)
    widths = [int(w) for w in args.widths.split(",")]
    best: dict[int, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for w in widths:
                row = time_width(w, args, crops, Path(tmp) / f"{w}-{r}")
                print(f"round {r} E {w}: {row['wall_s_per_step']:.2f} s wall, {row['cpu_s_per_step']:.2f} s CPU per step",
                      flush=True)
                if w not in best or row["cpu_s_per_step"] < best[w]["cpu_s_per_step"]:
                    best[w] = row
    base = best[widths[0]]
    print(f"{'E channels':>10} {'wall s/step':>12} {'CPU s/step':>11} {'x CPU':>6} {'steps/CPU h':>12}")
    for w in widths:
        row = best[w]
        row["x_cpu"] = row["cpu_s_per_step"] / base["cpu_s_per_step"]
        print(f"{w:>10} {row['wall_s_per_step']:>12.2f} {row['cpu_s_per_step']:>11.2f} {row['x_cpu']:>6.2f} "
              f"{3600 / row['cpu_s_per_step']:>12.0f}")
    if args.json:
        args.json.write_text(json.dumps([best[w] for w in widths], indent=1) + "\n")


if __name__ == "__main__":
    main()
