"""Checkerboard against channel-wise context at equal steps (issue 30 item 2): the y rate each
logged on the same training batches, beside the model without a context on those batches.

    .venv/bin/python scripts/train_context.py --model cosmic-small-vr --data ../shared/data/ucmerced \\
        --out runs/ctx --steps 2000                                   # checkerboard
    .venv/bin/python scripts/train_context.py --kind channel --model cosmic-small-vr \\
        --data ../shared/data/ucmerced --out runs/chctx --steps 2000 --stop-at 1000
    .venv/bin/python benchmarks/context_curves.py runs/ctx runs/chctx --model cosmic-small-vr \\
        --data ../shared/data/ucmerced --steps 2000

The first table: both runs share the seed, so ``train_context`` draws the same crops and qualities at every step;
this script replays that draw and codes each logged step's batch with ``--model`` without its
context (the hyperprior alone; the shipped default has the channel-wise one since issue 30). Rates are the training estimate (-log2 of y's noisy likelihoods, bits
per pixel), not file bytes: a comparison of entropy models, not a codec result. The second
table: y's rate on the 42-image validation subset (crops to whole 64 px, eval mode: y rounded
around its means, no noise: the rates the coders would write, up to rANS overhead) at qualities 1, 3.5 and 6 for the model without a context, the
checkerboard run's final model and the channel-wise run's (at their own steps).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import torch

from cosmic.training.context import ContextConfig, _rate, context_batches
from cosmic.training.stage1 import Stage1Config, _val_images, crop_to_stride
from cosmic.zoo import load_model


def _logged(run: Path) -> dict[int, float]:
    return {int(r["step"]): float(r["y_bpp"]) for r in csv.DictReader(open(run / "metrics.csv"))}


def _plain_rates(cfg: ContextConfig, steps: set[int]) -> dict[int, float]:
    """y bpp of the model without a context on the batches ``train_context`` drew at ``steps``."""
    codec = load_model(cfg.model).without_context().onboard.train()  # training mode: the noisy likelihoods it logs
    torch.manual_seed(cfg.seed)  # the noise of the likelihoods, as train_context seeds it
    rates = {}
    with torch.no_grad():
        for step, x, q in context_batches(cfg, codec.quality_range):
            if step in steps:
                rates[step] = float(_rate(codec, x, q))
            if step >= max(steps):
                return rates
    return rates


def _val_rates(model: str, board: Path, channel: Path, data: str) -> None:
    images = _val_images(Stage1Config(data=data, out="-", val_images=42)).images  # the trainer's subset
    tensors = [torch.from_numpy(crop_to_stride(img)).permute(2, 0, 1)[None].float() / 255 for img in images]
    codecs = {"no context": load_model(model).without_context(), "checkerboard": load_model(str(board / "final")),
              "channel-wise": load_model(str(channel / "final"))}
    print("\n| quality | " + " | ".join(codecs) + " |\n|---|" + "---|" * len(codecs))
    for q in (1.0, 3.5, 6.0):
        with torch.no_grad():
            rates = {name: sum(float(_rate(m.onboard.eval(), x, torch.tensor([q]))) for x in tensors) / len(tensors)
                     for name, m in codecs.items()}
        base = rates.pop("no context")
        print(f"| {q:g} | {base:.5f} | " + " | ".join(f"{r:.5f} ({100 * (r / base - 1):+.2f} %)"
                                                    for r in rates.values()) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkerboard", type=Path)
    ap.add_argument("channel", type=Path)
    ap.add_argument("--model", default="cosmic-small-vr")
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, default=2000, help="the runs' --steps (their data order)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    board, channel = _logged(args.checkerboard), _logged(args.channel)
    steps = sorted(set(board) & set(channel))
    plain = _plain_rates(ContextConfig(model=args.model, data=args.data, steps=args.steps), set(steps))
    print("| steps | no context (y bpp) | checkerboard | channel-wise |")
    print("|---|---|---|---|")
    for lo in (steps[0], steps[len(steps) // 2]):
        window = [s for s in steps if s >= lo]
        base = sum(plain[s] for s in window) / len(window)
        cells = [sum(run[s] for s in window) / len(window) for run in (board, channel)]
        print(f"| {lo}-{steps[-1]} | {base:.5f} | " + " | ".join(f"{c:.5f} ({100 * (c / base - 1):+.2f} %)" for c in cells) + " |")
    _val_rates(args.model, args.checkerboard, args.channel, args.data)


if __name__ == "__main__":
    main()
