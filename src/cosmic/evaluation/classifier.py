"""A scene classifier trained here, for two measurements we can make without ImageNet weights
(paper Table 2 uses a downstream classifier; FID needs an ImageNet Inception we cannot download):

- **downstream accuracy**: top-1 accuracy on decoded images against the true class (the folder
  name), beside the accuracy on the originals;
- **Fréchet distance on its features** (FD-UCM): the FID formula applied to this classifier's
  pooled features of originals and decoded images. It is *not* FID and is labelled as such; it
  is comparable only between codecs scored with the same classifier.

The network is small (a stride-2 stem and four conv + max-pool stages, BatchNorm, global
average pooling, 256-d features; about 90 MMACs per image, so it trains on two CPU cores),
trained on 240-px crops of UC Merced train pooled to 128 px, with flips and 90-degree
rotations; images are scored whole, pooled to 128 px.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cosmic.utils.pretrained import ConfigMixin, register_component, register_to_config

__all__ = ["SceneClassifier", "frechet_distance", "class_of"]


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


@register_component
class SceneClassifier(nn.Module, ConfigMixin):
    @register_to_config
    def __init__(self, classes: list[str], widths: tuple = (32, 64, 128, 256), size: int = 128):
        super().__init__()
        self.classes, self.size = list(classes), size
        chans = [24, *widths]
        self.body = nn.Sequential(_conv(3, 24, stride=2), *[
            nn.Sequential(_conv(a, b), nn.MaxPool2d(2)) for a, b in zip(chans[:-1], chans[1:])])
        self.head = nn.Linear(widths[-1], len(classes))

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = F.adaptive_avg_pool2d(x, self.size) if x.shape[-1] >= self.size else F.interpolate(
                x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        mean = x.new_tensor([0.48, 0.49, 0.45]).view(1, 3, 1, 1)
        return (x - mean) / 0.22

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled 256-d features of RGB in [0, 1], (B, 3, H, W)."""
        return self.body(self._prepare(x)).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    @torch.no_grad()
    def predict_and_features(self, images: list[np.ndarray], batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """(labels, features) of (H, W, 3) uint8 images."""
        self.eval()
        labels = np.zeros(len(images), dtype=np.int64)
        feats = np.zeros((len(images), self.head.in_features))
        by_shape: dict[tuple, list[int]] = {}
        for i, im in enumerate(images):
            by_shape.setdefault(im.shape, []).append(i)
        for idx in by_shape.values():
            for k in range(0, len(idx), batch):
                part = idx[k : k + batch]
                x = torch.stack([torch.from_numpy(np.array(images[i])).permute(2, 0, 1) for i in part])
                f = self.features(x.float() / 255.0)
                feats[part] = f.numpy()
                labels[part] = self.head(f).argmax(1).numpy()
        return labels, feats


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula)."""
    import warnings

    from scipy import linalg

    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():  # fewer samples than features: singular, as with FID
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(ca @ cb)
        if not np.isfinite(covmean).all():
            eps = np.eye(ca.shape[0]) * 1e-6
            covmean = linalg.sqrtm((ca + eps) @ (cb + eps))
    covmean = np.real(covmean)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca) + np.trace(cb) - 2 * np.trace(covmean))


def class_of(path) -> str:
    """The true class of a dataset image: its folder name."""
    return Path(path).parent.name
