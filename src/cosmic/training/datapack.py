"""A compact, checksummed training pack: the training split and the validation subset in one file
that travels with the code to a machine without the data (issue 31, the offline GPU kit).

The pack is a ZIP archive (stored, not deflated: its members are already compressed images):

* ``data/SPLITS.json`` and ``data/<class>/<name>.webp``: a dataset folder like any other (the
  trainers read it through :func:`cosmic.training.data.split_files`), with the training lists as
  they are and ``val`` cut to the spread-out subset the stage-1 trainer validates on
  (:func:`val_subset`, the same images in the same order as ``--val-images N`` on the full set);
* ``extra/<name>.webp``: the ``--extra-data`` scenes;
* ``pack.json``: the format, the codec settings, and per member its SHA-256 and, for a lossy
  member, the PSNR of its pixels against the source image.

Validation images are stored **lossless** (WebP lossless decodes bit-exactly, so validation
figures are those of the source images). Training images are lossy WebP at ``quality``
(default 95; the whole UC Merced training split at about 3.2 bpp and 42 dB, whose error power is
about 1/20 of the codec's at 0.5 bpp, 29 dB); ``quality=None`` stores them lossless too (about
10 bpp: four times larger). WebP rather than JPEG XL or AVIF because Pillow reads it everywhere,
with nothing to install on the GPU machine.

:func:`open_pack` verifies every member against its checksum and unpacks the pack once into a
cache folder keyed by the pack's own SHA-256; ``--data PACK.zip`` works wherever ``--data DIR``
does (:func:`resolve_data`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from cosmic.errors import InputError

__all__ = ["FORMAT", "write_pack", "open_pack", "resolve_data", "val_subset", "read_pack_index"]

FORMAT = "cosmic-data-pack/1"
MAX_MEMBERS = 100_000


def val_subset(names: list[str], count: int) -> list[str]:
    """The spread-out, fixed validation subset of the stage-1 trainer
    (:func:`cosmic.training.stage1._val_images`): every (len/count)-th image, in order."""
    if len(names) <= count:
        return list(names)
    stride = len(names) / count
    return [names[int(i * stride)] for i in range(count)]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _psnr(a: np.ndarray, b: np.ndarray) -> float | None:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return None if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def _encode(path: Path, quality: int | None) -> tuple[bytes, float | None]:
    """(WebP bytes, PSNR of the decoded pixels; None when they are bit-exact)."""
    from cosmic.io.images import load_rgb

    pixels = load_rgb(path).pixels
    buf = io.BytesIO()
    options = {"lossless": True, "quality": 100, "method": 6} if quality is None else \
        {"quality": quality, "method": 4}
    Image.fromarray(pixels).save(buf, "WEBP", **options)
    back = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    if back.shape != pixels.shape:
        raise InputError(f"{path}: the pack's WebP changed the image's shape")
    return buf.getvalue(), _psnr(pixels, back)


def _webp_name(name: str) -> str:
    return str(PurePosixPath(name).with_suffix(".webp"))


def write_pack(root: str | os.PathLike, out: str | os.PathLike, splits: tuple[str, ...] = ("train", "train_extra"),
               val_images: int = 42, extra: list[str | os.PathLike] = (), quality: int | None = 95,
               progress=None) -> dict:
    """Write the pack of dataset folder ``root`` (with its SPLITS.json) to ``out``; returns the
    pack's index (``pack.json``). Written to a temporary name and renamed, so ``out`` is whole."""
    root, out = Path(root), Path(out)
    lists = json.loads((root / "SPLITS.json").read_text())
    missing = [s for s in (*splits, "val") if s not in lists]
    if missing:
        raise InputError(f"{root}/SPLITS.json: no list named {', '.join(missing)}")
    jobs = [(f"data/{_webp_name(n)}", root / n, quality) for s in splits for n in lists[s]]
    val = val_subset(lists["val"], val_images)
    jobs += [(f"data/{_webp_name(n)}", root / n, None) for n in val]
    jobs += [(f"extra/{_webp_name(Path(p).name)}", Path(p), quality) for p in extra]
    new_lists = {s: [_webp_name(n) for n in lists[s]] for s in splits}
    new_lists["val"] = [_webp_name(n) for n in val]
    index = {"format": FORMAT, "codec": "webp", "train_quality": quality, "val_lossless": True,
             "splits": {s: len(v) for s, v in new_lists.items()}, "members": {}}
    tmp = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for member, source, q in (progress or (lambda x: x))(jobs):
            data, psnr = _encode(source, q)
            zf.writestr(member, data)
            index["members"][member] = {"sha256": _sha256(data), "psnr": psnr}
        splits_json = json.dumps(new_lists, indent=1).encode()
        zf.writestr("data/SPLITS.json", splits_json)
        index["members"]["data/SPLITS.json"] = {"sha256": _sha256(splits_json), "psnr": None}
        zf.writestr("pack.json", json.dumps(index, indent=1))
    os.replace(tmp, out)
    return index


def read_pack_index(pack: str | os.PathLike) -> dict:
    """``pack.json`` of a pack; InputError when the file is not a pack of this format."""
    try:
        with zipfile.ZipFile(pack) as zf:
            index = json.loads(zf.read("pack.json"))
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise InputError(f"{pack}: not a cosmic data pack ({type(exc).__name__})") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise InputError(f"{pack}: not a {FORMAT} pack")
    return index


def _safe_member(name: str) -> bool:
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts and path.parts[:1] in (("data",), ("extra",))


def _extract_verified(pack: Path, dest: Path) -> None:
    """Unpack every member into ``dest`` after checking its SHA-256 against ``pack.json``."""
    index = read_pack_index(pack)
    members = index.get("members", {})
    if len(members) > MAX_MEMBERS or not all(map(_safe_member, members)):
        raise InputError(f"{pack}: member names outside data/ and extra/, or too many members")
    with zipfile.ZipFile(pack) as zf:
        for name, meta in members.items():
            try:
                data = zf.read(name)
            except KeyError:
                raise InputError(f"{pack}: member {name} listed in pack.json is missing") from None
            if _sha256(data) != meta.get("sha256"):
                raise InputError(f"{pack}: member {name} fails its checksum (the pack is damaged)")
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def open_pack(pack: str | os.PathLike, cache: str | os.PathLike | None = None) -> Path:
    """The folder the verified pack unpacks to (``<cache>/<sha256 of the pack>``, made once;
    ``cache`` defaults to ``$COSMIC_PACK_CACHE`` or the temp folder). Holds ``data/`` (pass it
    as ``--data``) and ``extra/``."""
    pack = Path(pack)
    if not pack.is_file():
        raise InputError(f"{pack}: no such data pack")
    cache = Path(cache or os.environ.get("COSMIC_PACK_CACHE") or Path(tempfile.gettempdir()) / "cosmic-packs")
    dest = cache / _file_sha256(pack)[:32]
    if (dest / ".complete").is_file():
        return dest
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=dest.name + ".", dir=cache))
    try:
        _extract_verified(pack, work)
        (work / ".complete").touch()
        os.replace(work, dest)
    except OSError:
        if not (dest / ".complete").is_file():  # not another process's finished copy
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest


def resolve_data(data: str | os.PathLike) -> Path:
    """A dataset folder for ``--data``: the folder itself, or a data pack's verified ``data/``."""
    path = Path(data)
    if path.is_file() and zipfile.is_zipfile(path):
        return open_pack(path) / "data"
    return path


def main(argv: list[str] | None = None) -> None:
    """``python -m cosmic.training.datapack open PACK``: verify and unpack, print the folder
    (used by scripts/train_on_device.sh on a machine with nothing but PyTorch and Pillow)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "open":
        raise SystemExit("usage: python -m cosmic.training.datapack open PACK")
    try:
        print(open_pack(args[1]))
    except InputError as exc:
        raise SystemExit(f"cosmic: error: {exc}") from None


if __name__ == "__main__":
    main()
