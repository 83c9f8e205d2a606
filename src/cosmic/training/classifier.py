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
from cosmic.training.loop import Cadence, Task, TrainLoop

__all__ = ["train_classifier", "ClassifierTask"]


class ClassifierTask(Task):
    """The scene classifier for the :class:`~cosmic.training.loop.TrainLoop`: AdamW under a
    one-cycle schedule, label-smoothed cross-entropy."""

    def __init__(self, model: SceneClassifier, lr: float, steps: int, loop: TrainLoop):
        self.model, self.loop = model, loop
        self.optimizers = {"main": torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)}
        self.schedule = torch.optim.lr_scheduler.OneCycleLR(self.optimizers["main"], max_lr=lr, total_steps=steps)

    def step(self, batch, step: int) -> dict:
        x, y = batch
        loss = F.cross_entropy(self.model(x), y, label_smoothing=0.1)
        self.optimizers["main"].zero_grad(set_to_none=True)
        self.loop.optimise(loss, self.optimizers["main"], clip=None)
        self.schedule.step()
        return {"loss": float(loss.detach())}


def _batches(train: ImageFolder, targets: torch.Tensor, batch_size: int):
    """Random crops with their classes, a random quarter turn for half the batches."""
    while True:
        picks = [train.random_crop() for _ in range(batch_size)]
        x = torch.stack([p[1] for p in picks])
        y = targets[[p[0] for p in picks]]
        if torch.rand(()) < 0.5:  # 90-degree rotations: overhead imagery has no "up"
            x = torch.rot90(x, 1, (2, 3))
        yield x, y


def train_classifier(data: str | Path, out: str | Path, steps: int = 1500, batch_size: int = 32,
                     lr: float = 2e-3, seed: int = 0, progress: bool = True) -> tuple[Path, float]:
    """Train on the ``train`` split of ``data`` (class = folder name); returns the saved model's
    directory and its top-1 accuracy on the ``val`` split. No checkpoints (a few minutes' run)."""
    torch.manual_seed(seed)
    # 240-px crops pooled to 128 px: nearly the scale at which whole 256-px images are scored
    train = ImageFolder(data, "train", crop=240, samples_per_epoch=10**9)
    classes = sorted({class_of(f) for f in train.files})
    index = {c: i for i, c in enumerate(classes)}
    targets = torch.tensor([index[class_of(f)] for f in train.files])
    loop = TrainLoop(Cadence(steps, checkpoint_every=steps, log_every=20), None, progress=progress,
                     desc="classifier")
    task = ClassifierTask(SceneClassifier(classes), lr, steps, loop)
    t0 = time.time()
    loop.run(task, _batches(train, targets, batch_size), {"step": 0})
    model = task.model
    val_files = split_files(data, "val")
    images = [load_rgb(f).pixels for f in val_files]
    labels, _ = model.predict_and_features(images)
    acc = float(np.mean([classes[l] == class_of(f) for l, f in zip(labels, val_files)]))
    out = Path(out)
    model.save_pretrained(out, extra={"data": str(data), "steps": steps, "val_top1": acc,
                                      "train_s": round(time.time() - t0, 1)})
    return out, acc
