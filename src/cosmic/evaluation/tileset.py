"""The tile test set (paper §5.1): scenes cut into full ``tile`` x ``tile`` tiles, with a manifest.

A 2306 x 2306 scene gives 9 x 9 = 81 tiles of 256 px, as in the paper: only whole tiles are cut,
from the top-left corner; the remainder of each side is left out, and the manifest records the
region the tiles cover so that a stitched reconstruction can be compared with the original crop.
Tiles that are entirely fill (value 0 in every band: the black border of a rotated Landsat scene)
are written but flagged ``"fill": true`` so evaluations can skip them.

A scene's sensor metadata (its fMoW-style sidecar ``scene.json``, completed from the georeference
it carries) is written beside every tile as ``rRR_cCC.json``, so a metadata-conditioned decoder
scored on the tiles sees what it would see on the scene (scene-level values: the sun angles and
location of the scene, not of the tile).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from cosmic.errors import InputError
from cosmic.io.images import IMAGE_SUFFIXES, load_rgb, save_image

__all__ = ["build_tile_set", "load_manifest", "stitch", "stitched_scores", "MANIFEST_NAME"]

MANIFEST_NAME = "manifest.json"
_PREFERENCE = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".webp", ".bmp")


def _scene_files(scenes: Path) -> list[Path]:
    """One file per scene stem, preferring lossless 8-bit PNG over the originals beside it."""
    if scenes.is_file():
        return [scenes]
    if not scenes.is_dir():
        raise InputError(f"{scenes}: no such file or folder")
    by_stem: dict[str, Path] = {}
    for p in sorted(scenes.iterdir()):
        if p.suffix.lower() not in IMAGE_SUFFIXES or not p.is_file():
            continue
        have = by_stem.get(p.stem)
        if have is None or _PREFERENCE.index(p.suffix.lower()) < _PREFERENCE.index(have.suffix.lower()):
            by_stem[p.stem] = p
    if not by_stem:
        raise InputError(f"{scenes}: no scene images")
    return [by_stem[k] for k in sorted(by_stem)]


def _scene_metadata(path: Path) -> dict:
    """The scene's metadata as an fMoW-style dict ({} without a sidecar)."""
    import warnings

    from cosmic.io.product_metadata import sidecar_metadata
    from cosmic.metadata import MetadataWarning, sidecar_for

    side = sidecar_for(path)
    if side is None:
        return {}
    with warnings.catch_warnings():  # provenance keys of the shared scenes' sidecars
        warnings.simplefilter("ignore", MetadataWarning)
        return sidecar_metadata(side).to_dict()


def build_tile_set(scenes, out: str | os.PathLike, tile: int = 256, progress: bool = False,
                   metadata: bool = True) -> dict:
    """Cut every scene under ``scenes`` (a folder or image, or a list of them) into tiles under
    ``out``; write and return the manifest. ``metadata=False``: no sidecars beside the tiles."""
    from cosmic.utils.progress import progress_bar as tqdm

    out = Path(out)
    sources = [scenes] if isinstance(scenes, (str, os.PathLike)) else list(scenes)
    files = [f for src in sources for f in _scene_files(Path(src))]
    if len({f.stem for f in files}) != len(files):
        raise InputError("two scenes share a file name; tiles are stored under the scene's name")
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"tile": tile, "scenes": [], "tiles": []}
    for path in tqdm(files, desc="scenes", disable=not progress):
        pixels = load_rgb(path).pixels
        h, w = pixels.shape[:2]
        rows, cols = h // tile, w // tile
        entry = {
            "name": path.stem, "source": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "width": w, "height": h, "rows": rows, "cols": cols, "crop": [cols * tile, rows * tile],
        }
        manifest["scenes"].append(entry)
        if rows == 0 or cols == 0:
            entry["skipped"] = f"smaller than one {tile}px tile"
            continue
        (out / path.stem).mkdir(exist_ok=True)
        meta = _scene_metadata(path) if metadata else {}
        if meta:
            entry["metadata"] = meta
        for r in range(rows):
            for c in range(cols):
                block = pixels[r * tile : (r + 1) * tile, c * tile : (c + 1) * tile]
                name = f"{path.stem}/r{r:02d}_c{c:02d}.png"
                save_image(np.ascontiguousarray(block), out / name)
                if meta:
                    (out / name).with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
                manifest["tiles"].append({
                    "scene": path.stem, "row": r, "col": c, "x": c * tile, "y": r * tile, "file": name,
                    "fill": bool((block.max(axis=2) == 0).all()),
                })
    tmp = out / (MANIFEST_NAME + ".partial")
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, out / MANIFEST_NAME)
    return manifest


def load_manifest(folder: str | os.PathLike) -> dict:
    """The tile set's manifest (an :class:`InputError` if ``folder`` has none)."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        raise InputError(f"{folder}: no {MANIFEST_NAME}; build it with 'cosmic data tiles'")
    from cosmic.utils.pretrained import read_json

    return read_json(path, InputError)


def stitch(manifest: dict, scene: str, tiles: dict[tuple[int, int], np.ndarray]) -> np.ndarray:
    """Reassemble one scene's crop from ``{(row, col): (tile, tile, 3) uint8}``."""
    t = manifest["tile"]
    entry = next((s for s in manifest["scenes"] if s["name"] == scene), None)
    if entry is None:
        raise KeyError(scene)
    out = np.zeros((entry["rows"] * t, entry["cols"] * t, 3), dtype=np.uint8)
    for (r, c), px in tiles.items():
        out[r * t : (r + 1) * t, c * t : (c + 1) * t] = px
    return out


def stitched_scores(manifest: dict, root: Path, decoded: dict) -> list[dict]:
    """Per scene and (codec, point): the decoded tiles ``decoded[(str(tile path), codec, point)]``
    stitched back (all-fill tiles, which are not coded, are taken from the original) and scored
    against the original crop - PSNR, MS-SSIM and the seam score of :mod:`cosmic.evaluation.seams`."""
    from cosmic.evaluation.metrics import ms_ssim_or, psnr
    from cosmic.evaluation.seams import seam_score

    t = manifest["tile"]
    out = []
    keys = list(dict.fromkeys((c, p) for (_, c, p) in decoded))  # codec and knob order
    for scene in manifest["scenes"]:
        tiles = [x for x in manifest["tiles"] if x["scene"] == scene["name"]]
        if not tiles:
            continue
        original = {(x["row"], x["col"]): load_rgb(root / x["file"]).pixels for x in tiles}
        ref = stitch(manifest, scene["name"], original)
        for codec, point in keys:
            parts = {}
            for x in tiles:
                y = decoded.get((str(root / x["file"]), codec, point))
                parts[(x["row"], x["col"])] = y if y is not None else original[(x["row"], x["col"])]
            img = stitch(manifest, scene["name"], parts)
            out.append({"scene": scene["name"], "codec": codec, "point": point,
                        "psnr": psnr(ref, img), "ms_ssim": ms_ssim_or(ref, img), "seam": seam_score(img, ref, t)})
    return out
