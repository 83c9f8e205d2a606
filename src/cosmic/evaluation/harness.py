"""``cosmic eval``: rate-distortion of several codecs on a folder of images (paper §5, Fig. 3).

Every point is a real encoding: bpp = encoded bytes x 8 / pixels (a whole ``.cosmic`` file for
COSMIC, a raw codestream for the classical codecs), PSNR and MS-SSIM on the decoded RGB.

This module only orchestrates; the parts are:

- :mod:`cosmic.evaluation.specs`: the codec names of ``--codecs``, parsed into specs (no model
  loaded);
- :mod:`cosmic.evaluation.runners`: each spec coded and decoded, one image at a time;
- :mod:`cosmic.evaluation.metrics` (PSNR, MS-SSIM), :mod:`cosmic.evaluation.perceptual` (LPIPS)
  and :mod:`cosmic.evaluation.classifier` (top-1, FD-UCM) on every decode;
- :mod:`cosmic.evaluation.statistics`: means per rate point, seed spread, BD-rates;
- :mod:`cosmic.evaluation.reports`: the JSON, markdown tables and plots written.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cosmic.errors import InputError
from cosmic.evaluation.metrics import ms_ssim_or, psnr
from cosmic.evaluation.reports import write_results, write_stitched
from cosmic.evaluation.runners import make_runner
from cosmic.evaluation.specs import CodecSpec
from cosmic.io.images import load_rgb
from cosmic.utils.progress import progress_bar as tqdm

__all__ = ["evaluate", "eval_files", "run_evaluation", "report_only_results"]


def evaluate(files: list[Path], specs: list[CodecSpec], progress: bool = True, seed: int = 0,
             default_metadata=None, on_decoded=None, classifier=None,
             features: dict | None = None) -> list[dict]:
    """One row per (image, codec, rate point); ``on_decoded(path, codec, point, pixels)`` sees
    every decoded image (the tile-set evaluation stitches them). With a ``classifier``
    (:mod:`cosmic.evaluation.classifier`) each row records whether the decoded image is still
    classified correctly, and ``features[(codec, point)]`` (``("original", "")`` for the
    originals) collects its features for the Fréchet distance."""
    from cosmic.evaluation.perceptual import lpips_metric

    lpips_fn = lpips_metric()  # None unless the package and its AlexNet weights are cached
    rows: list[dict] = []
    encoded: dict = {}  # the encode cache the runners share
    runners = {s.name: make_runner(s, seed, encoded) for s in specs if s.points}
    for path in tqdm(files, desc="images", disable=not progress):
        x = load_rgb(path).pixels
        truth = _classify_original(classifier, path, x, features)
        meta = _metadata_for(path, default_metadata)
        for spec in specs:
            for point in spec.points:
                label, bpp, y, t_enc, t_dec = runners[spec.name].code(point, x, meta, key=str(path))
                row = {"image": str(path), "codec": spec.name, "point": label, "bpp": bpp,
                       "psnr": psnr(x, y), "ms_ssim": ms_ssim_or(x, y), "encode_s": t_enc, "decode_s": t_dec}
                if lpips_fn is not None:
                    row["lpips"] = lpips_fn(x, y)
                _classify_decoded(classifier, truth, y, row, features, (spec.name, label))
                rows.append(row)
                if on_decoded is not None:
                    on_decoded(path, spec.name, label, y)
    return rows


def _metadata_for(path: Path, default_metadata):
    """The image's sidecar metadata, else ``default_metadata``, else none."""
    from cosmic.metadata import SensorMetadata, load_sidecar, sidecar_for

    side = sidecar_for(path)
    return load_sidecar(side) if side else (default_metadata or SensorMetadata())


def _classify_original(classifier, path: Path, x: np.ndarray, features: dict | None):
    """The image's class if the classifier knows it (else None); records the original's features."""
    if classifier is None:
        return None
    from cosmic.evaluation.classifier import class_of

    truth = class_of(path) if class_of(path) in classifier.classes else None
    pred, feat = classifier.predict_and_features([x])
    if features is not None:
        features.setdefault(("original", ""), []).append(feat[0])
        if truth is not None:
            features.setdefault(("original-top1", ""), []).append(classifier.classes[pred[0]] == truth)
    return truth


def _classify_decoded(classifier, truth, y: np.ndarray, row: dict, features: dict | None, key) -> None:
    """Top-1 of a decoded image into ``row``; its features into ``features[key]``."""
    if classifier is None:
        return
    pred, feat = classifier.predict_and_features([y])
    if features is not None:
        features.setdefault(key, []).append(feat[0])
    if truth is not None:
        row["top1"] = bool(classifier.classes[pred[0]] == truth)


def eval_files(data: Path, split: str, limit: int = 0) -> list[Path]:
    """Images of a folder (SPLITS.json honoured), or the non-fill tiles of a tile set; with
    ``limit``, that many spread evenly over the set."""
    from cosmic.evaluation.tileset import MANIFEST_NAME, load_manifest
    from cosmic.io.images import split_files

    if (data / MANIFEST_NAME).is_file():
        files = [data / t["file"] for t in load_manifest(data)["tiles"] if not t["fill"]]
    else:
        files = split_files(data, split)
    if limit and len(files) > limit:
        files = [files[int(i * len(files) / limit)] for i in range(limit)]
    return files


def run_evaluation(data: Path, specs: list[CodecSpec], out: Path, split: str = "val", limit: int = 0,
                   seed: int = 0, title: str | None = None, command: str = "", default_metadata=None,
                   classifier=None, classifier_name: str | None = None, stitch: bool = True) -> list[Path]:
    """`cosmic eval`: evaluate ``specs`` on a folder or tile set and write the results (for a
    tile set also the stitched scenes, unless ``stitch`` is off); returns the markdown reports written."""
    from cosmic.evaluation.tileset import MANIFEST_NAME, load_manifest, stitched_scores

    tile_set = stitch and (data / MANIFEST_NAME).is_file()
    decoded: dict = {}
    keep = (lambda path, codec, point, y: decoded.__setitem__((str(path), codec, point), y)) if tile_set else None
    features: dict = {}
    rows = evaluate(eval_files(data, split, limit), specs, seed=seed, default_metadata=default_metadata,
                    on_decoded=keep, classifier=classifier, features=features)
    title = title or f"{data.name}" + (f"/{split}" if (data / "SPLITS.json").is_file() else "")
    write_results(out, rows, specs, title, command, features=features if classifier else None,
                  classifier_name=classifier_name)
    if not tile_set:
        return [out / "summary.md"]
    write_stitched(out, stitched_scores(load_manifest(data), data, decoded))
    return [out / "summary.md", out / "stitched.md"]


def report_only_results(out: Path, specs: list[CodecSpec], title: str, command: str) -> list[Path]:
    """Rewrite the reports of an earlier run from ``OUT/per_image.json`` (no coding)."""
    rows_file = out / "per_image.json"
    if not rows_file.is_file():
        raise InputError(f"{rows_file}: no results to report; run without --report-only first")
    run = json.loads((out / "run.json").read_text()) if (out / "run.json").is_file() else {}
    write_results(out, json.loads(rows_file.read_text()), specs, run.get("title", title),
                  run.get("command", command))
    return [out / "summary.md"]
