"""Training data read from disk as it is needed: datasets that do not fit in memory (fMoW).

Two forms, both giving ``crop`` x ``crop`` random patches (with flips) and, for stage 2, the
sensor metadata of their image (:mod:`cosmic.metadata`; ``--stream`` on both trainers):

* :class:`StreamedCrops` -- a folder of PNG / JPEG / TIFF / GeoTIFF files (``SPLITS.json``
  honoured, as :func:`~cosmic.training.data.split_files`), in the fMoW layout when each image has
  a ``NAME.json`` of sensor metadata beside it (gsd, utm, timestamp, off_nadir_angle_dbl,
  cloud_cover, target_azimuth_dbl, sun_azimuth_dbl, sun_elevation_dbl). A map-style dataset: it
  holds the file names only (one numpy byte-string array, which DataLoader workers share without
  copy-on-access), and sample ``i`` opens one file in the worker that asks for it. A GeoTIFF is
  read one window (the crop) at a time through :class:`~cosmic.io.raster.RasterSource`; PNG and
  JPEG files are decoded whole and cropped.
* :class:`TarShardCrops` -- WebDataset-style ``.tar`` shards (``KEY.png`` / ``KEY.jpg`` /
  ``KEY.tif`` with an optional ``KEY.json``), streamed member by member with the standard
  ``tarfile`` module (no webdataset dependency), for object stores and slow file systems. Shards
  are dealt out to (rank, worker) pairs; each process reads its shards sequentially.

What is guaranteed. :class:`StreamedCrops` keeps the in-memory path's contract: sample ``i`` is a
pure function of (seed, i, the sorted file list), so a run resumed at step s sees the crops an
uninterrupted run saw, with any number of workers or processes. Its image choice is uniform over
files, not proportional to area as :class:`~cosmic.training.data.ImageFolder` draws (that would
need every file's size up front), so its crops differ from the in-memory path's. Files smaller
than the crop are redrawn. :class:`TarShardCrops` gives no exact resume: a resumed run starts
its shards again in a new order (drawn from the seed and the step it resumes at); within a run
the order is reproducible for a given world size and worker count.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from cosmic.errors import InputError

__all__ = ["StreamedCrops", "TarShardCrops", "find_shards", "crop_array"]

_REDRAWS = 10
_IMAGE_EXT = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def crop_array(img: np.ndarray, crop: int, rng: np.random.Generator) -> torch.Tensor:
    """A random ``crop`` x ``crop`` patch of an (H, W, 3) uint8 array with random flips, as a
    (3, crop, crop) float tensor in [0, 1]."""
    top = int(rng.integers(0, img.shape[0] - crop + 1))
    left = int(rng.integers(0, img.shape[1] - crop + 1))
    return _flip_to_tensor(img[top: top + crop, left: left + crop], rng)


def _flip_to_tensor(patch: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    if rng.random() < 0.5:
        patch = patch[::-1]
    return torch.from_numpy(np.ascontiguousarray(patch)).permute(2, 0, 1).float().div_(255.0)


def _decode_bytes(data: bytes, name: str) -> np.ndarray:
    """(H, W, 3) uint8 of an encoded PNG / JPEG / TIFF held in memory."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def _metadata_tensors(meta) -> tuple[torch.Tensor, torch.Tensor]:
    from cosmic.ground.diffusion.metadata_encoder import metadata_to_tensor

    values, present = metadata_to_tensor([meta])
    return values[0], present[0]


class StreamedCrops(Dataset):
    """Random crops read from image files on demand; sample ``i`` = f(seed, i). With
    ``metadata`` (a :class:`~cosmic.metadata.SensorMetadata` default for images without a
    sidecar) each sample is ``(crop, values, present)`` as stage 2 takes it, else the crop."""

    def __init__(self, root, split: str = "train", crop: int = 256, extra=None, seed: int = 0, metadata=None):
        from cosmic.io.images import list_images
        from cosmic.training.data import split_files

        files = [str(p) for p in split_files(root, split)]
        for item in extra or []:
            item = Path(item)
            if not item.exists():
                raise InputError(f"{item}: no such file or folder")
            files += [str(p) for p in (list_images(item) if item.is_dir() else [item])]
        if not files:
            raise InputError(f"{root}: no images in split '{split}'")
        self.files = np.array(files, dtype=np.bytes_)  # one buffer: no per-file Python objects
        self.crop, self.seed, self.metadata = crop, seed, metadata

    def __len__(self) -> int:
        return 10**12  # an endless stream of crops; the sampler chooses indices

    def path(self, i: int) -> Path:
        return Path(self.files[i].decode())

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, index])
        for _ in range(_REDRAWS):
            i = int(rng.integers(len(self.files)))
            patch = self._read_crop(self.path(i), rng)
            if patch is not None:
                break
        else:
            raise InputError(f"{self.path(i)} and {_REDRAWS - 1} other drawn images: smaller than the "
                             f"{self.crop}-px crop")
        if self.metadata is None:
            return patch
        return (patch, *self._meta(self.path(i)))

    def _read_crop(self, path: Path, rng: np.random.Generator) -> torch.Tensor | None:
        if path.suffix.lower() in (".tif", ".tiff"):
            return self._window_crop(path, rng)
        from cosmic.io.images import load_rgb

        img = load_rgb(path).pixels
        return crop_array(img, self.crop, rng) if min(img.shape[:2]) >= self.crop else None

    def _window_crop(self, path: Path, rng: np.random.Generator) -> torch.Tensor | None:
        """Read only the crop's window of a (Geo)TIFF (non-8-bit data: a 2-98 % stretch)."""
        from cosmic.io.raster import RasterSource

        try:
            src = RasterSource.open(path)
        except InputError:
            src = RasterSource.open(path, scale="auto")
        with src:
            if min(src.height, src.width) < self.crop:
                return None
            top = int(rng.integers(0, src.height - self.crop + 1))
            left = int(rng.integers(0, src.width - self.crop + 1))
            patch = src.read(top, left, self.crop, self.crop)
        return _flip_to_tensor(patch, rng)

    def _meta(self, path: Path) -> tuple[torch.Tensor, torch.Tensor]:
        from cosmic.io.product_metadata import sidecar_metadata
        from cosmic.metadata import sidecar_for

        side = sidecar_for(path)
        return _metadata_tensors(sidecar_metadata(side) if side else self.metadata)


def find_shards(root) -> list[Path]:
    """The ``*.tar`` shards of a folder (sorted), or ``[root]`` for one shard; [] otherwise."""
    root = Path(root)
    if root.is_file() and root.suffix == ".tar":
        return [root]
    return sorted(root.glob("*.tar")) if root.is_dir() else []


class TarShardCrops(IterableDataset):
    """Crops streamed from WebDataset-style tar shards: ``crops_per_image`` crops of each image,
    ``(crop, values, present)`` with ``metadata`` as :class:`StreamedCrops`. Endless: the shards
    are read again in a new order each pass."""

    def __init__(self, shards, crop: int = 256, seed: int = 0, metadata=None, crops_per_image: int = 1,
                 rank: int = 0, world: int = 1, start_step: int = 0):
        self.shards = [str(s) for s in shards]
        if not self.shards:
            raise InputError("no .tar shards found")
        self.crop, self.seed, self.metadata, self.crops_per_image = crop, seed, metadata, crops_per_image
        self.rank, self.world, self.start_step = rank, world, start_step

    def _my_shards(self, epoch: int) -> list[str]:
        info = get_worker_info()
        wid, nworkers = (info.id, info.num_workers) if info else (0, 1)
        slot, slots = self.rank * nworkers + wid, self.world * nworkers
        order = np.random.default_rng([self.seed, self.start_step, epoch]).permutation(len(self.shards))
        mine = [self.shards[k] for n, k in enumerate(order) if n % slots == slot]
        return mine or [self.shards[order[slot % len(order)]]]  # fewer shards than readers: share

    def __iter__(self):
        info = get_worker_info()
        wid = info.id if info else 0
        epoch = 0
        while True:
            rng = np.random.default_rng([self.seed, self.start_step, epoch, self.rank, wid])
            for img, meta in self._samples(self._my_shards(epoch)):
                if min(img.shape[:2]) < self.crop:
                    continue
                for _ in range(self.crops_per_image):
                    patch = crop_array(img, self.crop, rng)
                    yield patch if self.metadata is None else (patch, *_metadata_tensors(meta))
            epoch += 1

    def _samples(self, shards: list[str]):
        """(pixels, metadata) per sample key, streaming each shard once."""
        from cosmic.metadata import SensorMetadata

        for shard in shards:
            key, image, side = None, None, None
            with tarfile.open(shard, mode="r|*") as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    stem, _, ext = member.name.rpartition(".")
                    if stem != key:
                        if image is not None:
                            yield image, self._sample_meta(side, SensorMetadata)
                        key, image, side = stem, None, None
                    data = tar.extractfile(member).read()
                    if "." + ext.lower() in _IMAGE_EXT:
                        image = _decode_bytes(data, member.name)
                    elif ext.lower() == "json":
                        side = data
            if image is not None:
                yield image, self._sample_meta(side, SensorMetadata)

    def _sample_meta(self, side: bytes | None, cls):
        if self.metadata is None:
            return None
        if side is None:
            return self.metadata
        try:
            return cls.from_dict(json.loads(side), source="shard sidecar")
        except (InputError, ValueError, TypeError):  # a bad sidecar: the dataset-wide default
            return self.metadata


def streamed(data, split: str, crop: int, extra, seed: int, metadata, info, first_step: int, batch: int):
    """(dataset, sampler) of a trainer's ``--stream``: tar shards when ``data`` holds ``*.tar``
    files (no sampler: the dataset deals shards to ranks and workers), else image files read on
    demand with the step sampler (this rank's positions of each global batch)."""
    from cosmic.training.distributed import StepSampler

    shards = find_shards(data)
    if shards:
        return TarShardCrops(shards, crop, seed, metadata, rank=info.rank, world=info.world,
                             start_step=first_step), None
    return (StreamedCrops(data, split, crop, extra, seed, metadata),
            StepSampler(first_step, batch, info.rank, info.world))
