"""Stage-1 training throughput: what each CPU-minded choice is worth, measured in one run.

    .venv/bin/python benchmarks/train_step_profile.py [--steps 6] [--threads 2] [--compile] [--json OUT]

Each configuration runs the real stage-1 step (forward, loss, backward, Adam, aux step) on UC
Merced train crops, batch 8. Configurations go from a naive set-up (PNG decoded every step,
channels_last, 256-px crops, the decoder run twice per sample) to the shipped trainer's, one change
at a time. Reported: steps/s and training pixels/s (crop size changes the work per step), and the
ratio of each to the naive set-up. Timings on shared CPUs are noisy; configurations are
interleaved over two rounds and the better round is kept.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from cosmic.io.images import load_rgb
from cosmic.models.registry import build_model
from cosmic.training.data import ImageFolder, split_files
from cosmic.training.losses import Stage1Loss
from cosmic.training.stage1 import _parameter_groups

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ucmerced"


class FromDisk(torch.utils.data.Dataset):
    """The naive loader: decode a PNG for every crop."""

    def __init__(self, root, crop):
        self.files, self.crop = split_files(root, "train"), crop

    def __len__(self):
        return 10**9

    def __getitem__(self, i):
        rng = np.random.default_rng()
        img = load_rgb(self.files[int(rng.integers(len(self.files)))]).pixels
        if min(img.shape[:2]) < self.crop:
            return self[i + 1]
        t = int(rng.integers(0, img.shape[0] - self.crop + 1))
        left = int(rng.integers(0, img.shape[1] - self.crop + 1))
        patch = img[t : t + self.crop, left : left + self.crop]
        return torch.from_numpy(np.ascontiguousarray(patch)).permute(2, 0, 1).float() / 255


CONFIGS = [
    # name, in-memory data, channels_last, crop, split decoder, bf16
    ("naive: PNG per step, channels_last, crop 256, D twice", False, True, 256, False, False),
    ("+ images held in memory", True, True, 256, False, False),
    ("+ contiguous NCHW (no channels_last)", True, False, 256, False, False),
    ("+ D once per sample (split batch)", True, False, 256, True, False),
    ("+ crop 128 (shipped trainer)", True, False, 128, True, False),
    ("shipped + bf16 autocast", True, False, 128, True, True),
]
COMPILED = ("shipped + torch.compile (inductor)", True, False, 128, True, False)


def run(cfg, steps: int, datasets: dict, compile_model: bool = False) -> dict:
    name, in_memory, channels_last, crop, split, bf16 = cfg
    torch.manual_seed(0)
    model = build_model("cosmic", "small")
    model.split_decoder = split
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if compile_model else model
    main, aux = _parameter_groups(model)
    opt, aux_opt = torch.optim.Adam(main, lr=1e-4), torch.optim.Adam(aux, lr=1e-3)
    loss_fn = Stage1Loss(0.0026, 2.0)
    key = (in_memory, crop)
    if key not in datasets:
        datasets[key] = ImageFolder(DATA, "train", crop=crop, samples_per_epoch=10**9) if in_memory else FromDisk(DATA, crop)
    it = iter(torch.utils.data.DataLoader(datasets[key], batch_size=8))
    model.train()

    def step():
        x = next(it)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        opt.zero_grad(set_to_none=True)
        aux_opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = forward(x)
        loss_fn(out, x)["loss"].backward()
        opt.step()
        model.aux_loss().backward()
        aux_opt.step()

    t0 = time.perf_counter()
    step()  # warm-up (and compilation)
    warmup = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sps = steps / (time.perf_counter() - t0)
    return {"config": name, "steps_per_s": sps, "pixels_per_s": sps * 8 * crop * crop, "first_step_s": warmup}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    datasets: dict = {}
    best: dict[str, dict] = {}
    for _ in range(2):
        for cfg in CONFIGS:
            r = run(cfg, args.steps, datasets)
            if cfg[0] not in best or r["steps_per_s"] > best[cfg[0]]["steps_per_s"]:
                best[cfg[0]] = r
    rows = [best[c[0]] for c in CONFIGS]
    if args.compile:
        try:
            rows.append(run(COMPILED, args.steps, datasets, compile_model=True))
        except Exception as exc:  # report, do not hide: inductor needs a C++ toolchain
            print(f"torch.compile failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    base = rows[0]
    print(f"{'configuration':<56} {'steps/s':>8} {'Mpx/s':>7} {'x steps':>8} {'x px':>6}")
    for r in rows:
        r["x_steps"] = r["steps_per_s"] / base["steps_per_s"]
        r["x_pixels"] = r["pixels_per_s"] / base["pixels_per_s"]
        print(f"{r['config']:<56} {r['steps_per_s']:>8.2f} {r['pixels_per_s'] / 1e6:>7.2f} "
              f"{r['x_steps']:>8.2f} {r['x_pixels']:>6.2f}   (first step {r['first_step_s']:.1f} s)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
