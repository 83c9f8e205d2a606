"""Train a checkerboard context on a trained model, every other weight frozen (issue 30 item 2;
see :mod:`cosmic.training.context`).

    .venv/bin/python scripts/train_context.py --model cosmic-small-vr --data ../shared/data/ucmerced \\
        --out runs/ctx --steps 2000
"""

from __future__ import annotations

import argparse

import torch

from cosmic.training.context import ContextConfig, train_context


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="cosmic-small-vr")
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", default="runs/context")
    ap.add_argument("--split", default="train+train_extra")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--kind", choices=("checkerboard", "channel"), default="checkerboard")
    ap.add_argument("--stop-at", type=int, default=None, help="stop after this step (same schedule)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = ContextConfig(model=args.model, data=args.data, out=args.out, split=args.split, steps=args.steps,
                        batch_size=args.batch_size, crop=args.crop, lr=args.lr, kind=args.kind,
                        stop_at=args.stop_at)
    print(f"context model: {train_context(cfg)}")


if __name__ == "__main__":
    main()
