"""Training data: a folder of images held in memory as uint8, served as random crops.

Decoding PNGs every step would eat one of our two cores, so images are decoded once
(UC Merced train: 945 x 256 x 256 x 3 = 186 MB) and crops are cut from the uint8 array.
If the folder holds a ``SPLITS.json`` with ``train`` / ``val`` lists (as ``shared/data/ucmerced``
does) those lists choose the files; otherwise every image in the folder is used.

``extra`` adds whole images (e.g. large scenes) whose random crops are mixed in. Crops are drawn
with probability proportional to each image's area, so a 1500 x 1500 scene counts like 34 UC
Merced images rather than like one; crops that are mostly fill (pixel value 0 in every band, the
black border of a rotated Landsat scene) are redrawn.

``bands=1`` (a single-band model) serves one-band crops of the RGB images: each crop is its R, G
or B band or its luminance (ITU-R BT.601, a stand-in for a panchromatic band), one of the four
drawn at random with the crop, so the model sees narrow bands and a broad one alike. Validation
images (``crop=None``) are the luminance (:func:`single_band`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from cosmic.errors import InputError
from cosmic.training.config import CropSource  # noqa: F401  (re-exported: it was defined here)
from cosmic.training.datapack import resolve_data
from cosmic.io.images import list_images, load_rgb, split_files  # split_files: re-exported

__all__ = ["ImageFolder", "split_files", "extra_files", "mostly_fill", "single_band", "LUMINANCE"]

#: :func:`single_band`'s index of the luminance (0, 1, 2: the R, G, B bands)
LUMINANCE = 3


def single_band(pixels: np.ndarray, which: int) -> np.ndarray:
    """One band of (H, W, 3) uint8 pixels as (H, W, 1): R, G, B (``which`` 0..2) or the BT.601
    luminance (``LUMINANCE``), rounded to uint8."""
    if which < 3:
        return pixels[..., which : which + 1]
    luma = pixels.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]


def refuse_val_split(split: str) -> None:
    """Every trainer's guard: the val split is for evaluation only, never for training."""
    if "val" in split.split("+"):
        raise InputError(f"--split {split}: the val split is for evaluation only, never for training")


def mostly_fill(patch: np.ndarray) -> bool:
    """Whether half or more of an (H, W, C) patch's pixels are fill (0 in every band)."""
    return bool((patch.max(axis=2) == 0).mean() >= 0.5)


def extra_files(items: list[str | Path], data: str | Path) -> list[Path]:
    """The image files of ``--extra-data`` items (files, or folders searched recursively). An item
    inside the ``data`` folder is refused (it could hold the val split), as is a missing path or
    a folder without images."""
    files, root = [], Path(data).resolve()
    for item in map(Path, items):
        if not item.exists():
            raise InputError(f"--extra-data {item}: no such file or folder")
        if item.resolve().is_relative_to(root):
            raise InputError(f"--extra-data {item}: inside the --data folder (its split lists apply there)")
        found = list_images(item) if item.is_dir() else [item]
        if not found:
            raise InputError(f"--extra-data {item}: no images in the folder")
        files += found
    return files


class ImageFolder(Dataset):
    """Random ``crop`` x ``crop`` patches (with flips) of in-memory images; ``crop=None`` gives
    whole images cropped to a multiple of 64 (for validation). ``bands=1``: one band of each
    (see the module docstring).

    With a ``seed``, sample ``index`` is a pure function of (seed, index): a run that resumes at
    step s and asks for indices from s·batch on sees exactly the crops an uninterrupted run saw,
    whatever the number of DataLoader workers."""

    def __init__(self, root, split: str = "train", crop: int | None = 256, limit: int | None = None,
                 samples_per_epoch: int | None = None, extra: list[str | Path] | None = None,
                 seed: int | None = None, bands: int = 3):
        self.seed, self.bands = seed, bands
        root = resolve_data(root)  # a folder, or a data pack's verified folder
        files = split_files(root, split)
        if limit:
            files = files[:limit]
        files += extra_files(extra or [], root)
        self.crop = crop
        self.images, self.files = [], []
        for f in files:
            img = load_rgb(f).pixels
            if crop is not None and min(img.shape[:2]) < crop:
                continue
            self.images.append(img)
            self.files.append(f)
        if not self.images:
            raise InputError(f"{root}: no image of at least {crop} px per side in split '{split}'")
        self.samples_per_epoch = samples_per_epoch or len(self.images)
        areas = np.array([img.shape[0] * img.shape[1] for img in self.images], dtype=np.float64)
        self.weights = areas / areas.sum()

    def __len__(self) -> int:
        return self.samples_per_epoch if self.crop is not None else len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        if self.crop is None:
            img = self.images[index]
            h, w = (img.shape[0] // 64) * 64, (img.shape[1] // 64) * 64
            img = img[:h, :w]
            return _to_tensor(img if self.bands == 3 else single_band(img, LUMINANCE))
        rng = None if self.seed is None else np.random.default_rng([self.seed, index])
        return self.random_crop(rng)[1]

    def random_crop(self, rng: np.random.Generator | None = None) -> tuple[int, torch.Tensor]:
        """(index of the image, crop): an image drawn by area, a crop that is not mostly fill,
        random flips."""
        rng = rng or np.random.default_rng()
        i = int(rng.choice(len(self.images), p=self.weights))
        img = self.images[i]
        for _ in range(10):  # redraw crops that are mostly fill
            top = int(rng.integers(0, img.shape[0] - self.crop + 1))
            left = int(rng.integers(0, img.shape[1] - self.crop + 1))
            patch = img[top : top + self.crop, left : left + self.crop]
            if not mostly_fill(patch):
                break
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        if rng.random() < 0.5:
            patch = patch[::-1]
        if self.bands == 1:
            patch = single_band(patch, int(rng.integers(0, 4)))
        return i, _to_tensor(patch)


def _to_tensor(patch: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(patch)).permute(2, 0, 1).float().div_(255.0)


def crop_loader(cfg: CropSource, first_step: int, info) -> DataLoader:
    """This rank's batches from ``first_step`` on; sample p of global step s is crop number
    s·batch + p, and each rank takes its positions of every global batch (``StepSampler``).
    Stage 1's and the codebook trainer's loader (``info``: a
    :class:`~cosmic.training.distributed.DistInfo`)."""
    from cosmic.training import distributed as ddp

    local = ddp.check_batch(cfg.batch_size, info)
    if cfg.stream:
        from cosmic.training.streaming import streamed

        train_set, sampler = streamed(cfg.data, cfg.split, cfg.crop, cfg.extra_data, cfg.seed, None, info,
                                      first_step, cfg.batch_size)
    else:
        train_set = ImageFolder(cfg.data, cfg.split, crop=cfg.crop, samples_per_epoch=10**12,
                                extra=cfg.extra_data, seed=cfg.seed, bands=cfg.bands)
        sampler = ddp.StepSampler(first_step, cfg.batch_size, info.rank, info.world)
    # its own generator: a DataLoader iterator draws a base seed, and from the global RNG that
    # draw would shift the noise of a resumed run
    return DataLoader(train_set, batch_size=local, sampler=sampler, num_workers=cfg.workers,
                      drop_last=True, persistent_workers=cfg.workers > 0,
                      pin_memory=info.device.type == "cuda",
                      generator=torch.Generator().manual_seed(cfg.seed))
