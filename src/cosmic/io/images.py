"""Reading and writing ordinary raster images (PNG / JPEG / TIFF) as 8-bit RGB.

Every failure is a :class:`cosmic.errors.InputError` with a one-line message.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from cosmic.errors import InputError, first_line
from cosmic.io.limits import MAX_MEMORY_PIXELS, check_memory_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")

__all__ = ["LoadedImage", "load_rgb", "save_image", "list_images", "split_files", "IMAGE_SUFFIXES"]

# The decompression-bomb guard is the size policy of cosmic.io.limits (20000 x 20000): an image
# over it is refused from its header, before a pixel is decoded.
Image.MAX_IMAGE_PIXELS = MAX_MEMORY_PIXELS


@dataclass
class LoadedImage:
    pixels: np.ndarray  # (H, W, 3) uint8
    source_mode: str  # the PIL mode of the file ("RGB", "L", "RGBA", ...)
    channels: int  # 1 for a grayscale source (restored as grayscale on decode), else 3
    note: str | None = None  # what conversion was done, if any


def load_rgb(path: str | os.PathLike) -> LoadedImage:
    """Load an image as 8-bit RGB; grayscale and RGBA are converted with a note, 16-bit refused."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not an image")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                mode = im.mode
                im.load()
                return _to_rgb(path, im, mode)
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        check_memory_image(*_declared_size(path), str(path))
        raise InputError(f"{path}: image larger than {MAX_MEMORY_PIXELS} px") from None
    except UnidentifiedImageError as exc:
        raise InputError(f"{path}: not a readable image ({first_line(exc)})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: broken or truncated image ({first_line(exc)})") from None


def _declared_size(path: Path) -> tuple[int, int]:
    """The size an image file declares, read from its header with Pillow's limit lifted."""
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with Image.open(path) as im:
            return im.size
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _to_rgb(path: Path, im: Image.Image, mode: str) -> LoadedImage:
    bits = _bits_per_sample(path, im)
    if _is_high_bit(im) or bits > 8:
        raise InputError(
            f"{path}: {bits if bits > 8 else 'high'}-bit input ({mode}); "
            "the model takes 8-bit images - rescale it to 8 bits first"
        )
    if mode == "RGB":
        return LoadedImage(np.asarray(im, dtype=np.uint8).copy(), mode, 3)
    if mode in ("L", "1", "LA"):
        arr = np.asarray(im.convert("L"), dtype=np.uint8)
        note = "grayscale input: coded as RGB, decoded back to grayscale"
        if mode == "LA":
            note = "grayscale+alpha input: alpha dropped, coded as RGB, decoded back to grayscale"
        return LoadedImage(np.repeat(arr[:, :, None], 3, axis=2), mode, 1, note)
    if mode in ("RGBA", "RGBa", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
        note = None
        if mode in ("RGBA", "RGBa", "PA") or (mode == "P" and "transparency" in im.info):
            note = f"{mode} input: alpha channel dropped"
        elif mode != "P":
            note = f"{mode} input: converted to RGB"
        return LoadedImage(np.asarray(im.convert("RGB"), dtype=np.uint8).copy(), mode, 3, note)
    raise InputError(f"{path}: unsupported image mode {mode}; give an 8-bit RGB or grayscale image")


def _bits_per_sample(path: Path, im: Image.Image) -> int:
    """Bits per sample as stored in the file (Pillow reads 16-bit RGB PNG/TIFF as 8-bit RGB)."""
    if im.format == "PNG":
        with open(path, "rb") as fh:
            head = fh.read(25)
        if len(head) == 25 and head[12:16] == b"IHDR":
            return head[24]
    tags = getattr(im, "tag_v2", None)
    if tags is not None and 258 in tags:
        value = tags[258]
        return max(value) if isinstance(value, tuple) else int(value)
    return 8


def _is_high_bit(im: Image.Image) -> bool:
    return im.mode not in ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBa", "CMYK", "YCbCr", "LAB", "HSV")


def save_image(pixels: np.ndarray, path: str | os.PathLike, channels: int = 3,
               quality: int | None = None, alpha: np.ndarray | None = None) -> None:
    """Write (H, W, 3) uint8 pixels, or (H, W) grey ones, atomically (temporary file, then
    rename); ``quality``: a JPEG output's quality (1-95); ``alpha``: an (H, W) validity mask
    written as the alpha channel (255 valid, 0 fill; PNG), so that fill never reads as valid."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise InputError(f"{path}: unknown output format {suffix or '(none)'}; use .png, .tif, ...")
    if not path.parent.exists():
        raise InputError(f"{path.parent}: output directory does not exist")
    check_memory_image(pixels.shape[1], pixels.shape[0], str(path))
    im = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8))  # (H, W): L, (H, W, 3): RGB
    if channels == 1 and pixels.ndim == 3:
        im = im.convert("L")
    if alpha is not None:
        im.putalpha(Image.fromarray(np.where(alpha, 255, 0).astype(np.uint8)))
    tmp = path.with_name(f".{path.name}.partial")
    fmt = Image.registered_extensions()[suffix]
    try:
        im.save(tmp, format=fmt, **({"quality": quality} if quality is not None else {}))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def list_images(directory: str | os.PathLike) -> list[Path]:
    """All image files under ``directory`` (recursively), sorted."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: not a directory")
    return sorted(p for p in directory.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def split_files(root: str | Path, split: str) -> list[Path]:
    """Files of ``split`` ("train", "val", "all", or lists joined by '+', e.g.
    "train+train_extra") under ``root`` (its SPLITS.json; every image without one). Here, not in
    training, because evaluation reads the same splits."""
    root = Path(root)
    splits = root / "SPLITS.json"
    if split != "all" and splits.is_file():
        lists = json.loads(splits.read_text())
        names = []
        for part in split.split("+"):
            if part not in lists:
                raise InputError(f"{splits}: no '{part}' list")
            names += lists[part]
        return [root / name for name in names]
    files = list_images(root)
    if not files:
        raise InputError(f"{root}: no PNG/JPEG/TIFF images found")
    return files
