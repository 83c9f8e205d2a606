"""The statistics of ``cosmic eval``'s rows: means per rate point (CompressAI's averaging), the
spread over diffusion seeds (paper Table 4), BD-rates and quality deltas against the anchor
(:mod:`cosmic.evaluation.bjontegaard`), and FD-UCM (:mod:`cosmic.evaluation.classifier`)."""

from __future__ import annotations

import math
import re

import numpy as np

from cosmic.evaluation.bjontegaard import bd_rate, quality_at_rate

__all__ = ["ANCHOR", "summarize", "seed_spread", "bd_against", "delta_vs_anchor", "add_fd_ucm"]

#: the codec BD-rates and deltas are measured against
ANCHOR = "jpeg2000"


def _finite_mean(values) -> float:
    """Mean of the finite values (NaN if none is)."""
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def summarize(rows: list[dict]) -> dict[str, list[dict]]:
    """Per codec, per rate point: means over images (CompressAI's averaging), sorted by bpp."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["codec"], r["point"]), []).append(r)
    out: dict[str, list[dict]] = {}
    for (codec, point), rs in groups.items():
        finite = [r["psnr"] for r in rs if math.isfinite(r["psnr"])]
        out.setdefault(codec, []).append({
            "point": point, "images": len(rs),
            "bpp": float(np.mean([r["bpp"] for r in rs])),
            "psnr": float(np.mean(finite)) if finite else math.inf,
            "ms_ssim": _finite_mean([r["ms_ssim"] for r in rs]),
            "top1": float(np.mean([r["top1"] for r in rs])) if all("top1" in r for r in rs) else math.nan,
            "encode_s": float(np.nanmean([r["encode_s"] for r in rs])),
            "decode_s": float(np.nanmean([r["decode_s"] for r in rs])) if any(
                math.isfinite(r["decode_s"]) for r in rs) else math.nan,
        })
    for codec in out:
        out[codec].sort(key=lambda p: p["bpp"])
    return out


def seed_spread(summary: dict) -> list[dict]:
    """Table 4 of the paper: for codecs evaluated with several seeds (``NAME-sK``), per rate
    point the mean and 2σ (sample standard deviation) over seeds of the per-seed mean PSNR and
    MS-SSIM."""
    groups: dict[tuple[str, str], dict[int, dict]] = {}
    for codec, points in summary.items():
        m = re.fullmatch(r"(.+)-s(\d+)", codec)
        if m:
            for p in points:
                groups.setdefault((m.group(1), p["point"]), {})[int(m.group(2))] = p
    out = []
    for (codec, point), by_seed in groups.items():
        if len(by_seed) < 2:
            continue
        row = {"codec": codec, "point": point, "seeds": sorted(by_seed)}
        for metric in ("bpp", "psnr", "ms_ssim"):
            v = np.array([p[metric] for p in by_seed.values()], dtype=float)
            row[metric] = float(v.mean())
            row[f"{metric}_2sigma"] = float(2 * v.std(ddof=1))
        out.append(row)
    return out


def bd_against(summary: dict, codec: str, metric: str, anchor: str = ANCHOR) -> float:
    """BD-rate (percent) of ``codec`` against ``anchor`` on ``metric`` (``psnr`` or ``ms_ssim``)
    over their summarized rate points; NaN for the anchor itself or without the anchor."""
    if anchor not in summary or codec == anchor:
        return math.nan
    a, t = summary[anchor], summary[codec]
    return bd_rate([p["bpp"] for p in a], [p[metric] for p in a], [p["bpp"] for p in t], [p[metric] for p in t])


def delta_vs_anchor(summary: dict, codec: str, point: dict) -> tuple[float, float]:
    """(PSNR, MS-SSIM) of ``point`` minus the anchor's at the same bpp (NaN: no anchor there)."""
    if ANCHOR not in summary or codec == ANCHOR:
        return math.nan, math.nan
    a = summary[ANCHOR]
    return tuple(point[m] - quality_at_rate([q["bpp"] for q in a], [q[m] for q in a], point["bpp"])
                 for m in ("psnr", "ms_ssim"))


def add_fd_ucm(summary: dict, features: dict) -> None:
    """FD-UCM of every rate point that has the classifier features of two or more images
    (``features[(codec, point)]``, against ``features[("original", "")]``)."""
    from cosmic.evaluation.classifier import frechet_distance

    ref = np.stack(features[("original", "")])
    for codec, points in summary.items():
        for p in points:
            feats = features.get((codec, p["point"]))
            p["fd_ucm"] = frechet_distance(ref, np.stack(feats)) if feats and len(feats) > 1 else math.nan
