"""Training of the scene classifier of :mod:`cosmic.evaluation.classifier` (top-1 and FD-UCM in
``cosmic eval``): ``cosmic train classifier``. Here, not in evaluation, so that evaluation does
not import the trainers (issue 32: no import circle between the two)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cosmic.evaluation.classifier import SceneClassifier, class_of
from cosmic.io.images import load_rgb
from cosmic.training.data import ImageFolder, split_files
from cosmic.utils.progress import progress_bar as tqdm

__all__ = ["train_classifier"]


def train_classifier(data: str | Path, out: str | Path, steps: int = 1500, batch_size: int = 32,
                     lr: float = 2e-3, seed: int = 0, progress: bool = True) -> tuple[Path, float]:
    """Train on the ``train`` split of ``data`` (class = folder name); returns the saved model's
    directory and its top-1 accuracy on the ``val`` split."""
    torch.manual_seed(seed)
    # 240-px crops pooled to 128 px: nearly the scale at which whole 256-px images are scored
    train = ImageFolder(data, "train", crop=240, samples_per_epoch=10**9)
    classes = sorted({class_of(f) for f in train.files})
    index = {c: i for i, c in enumerate(classes)}
    targets = torch.tensor([index[class_of(f)] for f in train.files])
    model = SceneClassifier(classes)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    model.train()
    bar = tqdm(range(steps), desc="classifier", disable=not progress)
    t0 = time.time()
    for step in bar:
        picks = [train.random_crop() for _ in range(batch_size)]
        x = torch.stack([p[1] for p in picks])
        y = targets[[p[0] for p in picks]]
        if torch.rand(()) < 0.5:  # 90-degree rotations: overhead imagery has no "up"
            x = torch.rot90(x, 1, (2, 3))
        loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 20 == 0:
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
    val_files = split_files(data, "val")
    images = [load_rgb(f).pixels for f in val_files]
    labels, _ = model.predict_and_features(images)
    acc = float(np.mean([classes[l] == class_of(f) for l, f in zip(labels, val_files)]))
    out = Path(out)
    model.save_pretrained(out, extra={"data": str(data), "steps": steps, "val_top1": acc,
                                      "train_s": round(time.time() - t0, 1)})
    return out, acc

