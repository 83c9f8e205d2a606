"""The reports of ``cosmic eval``: ``per_image.json``, ``run.json``, one CompressAI-style
``<codec>.json`` per codec (``results.bpp`` / ``psnr-rgb`` / ``ms-ssim-rgb``, averaged per rate
point), ``summary.md`` (tables, BD-rate against the anchor, JPEG2000, the seed spread) and the RD
plots; for a tile set also ``stitched.json`` / ``stitched.md``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from cosmic.evaluation.specs import CodecSpec
from cosmic.evaluation.statistics import ANCHOR, add_fd_ucm, bd_against, delta_vs_anchor, seed_spread, summarize

__all__ = ["write_results", "write_stitched"]


def write_results(out: Path, rows: list[dict], specs: list[CodecSpec], title: str, command: str,
                  features: dict | None = None, classifier_name: str | None = None) -> dict:
    """Write per-image JSON, one CompressAI-style JSON per codec, summary.md and RD plots.
    With classifier ``features``, each rate point also gets FD-UCM (Fréchet distance of the
    classifier's features of decoded vs original images)."""
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(rows)
    with_cls = bool(features) and ("original", "") in features
    if with_cls:
        add_fd_ucm(summary, features)
    _write_json(out, rows, summary, title, command)
    n_images = len({r["image"] for r in rows})
    lines = [f"# Rate-distortion on {title}", "", f"{n_images} images. Command: `{command}`", "",
             "bpp from the encoded bytes; PSNR (dB) and MS-SSIM on RGB, averaged per rate point.", ""]
    lines += _bd_table(summary, specs)
    from cosmic.evaluation.perceptual import status

    perceptual = status()
    lines += ["", f"LPIPS: {perceptual['lpips']}. FID: {perceptual['fid']}.", ""]
    if with_cls:
        lines += _downstream_note(features, classifier_name)
    lines += _points_table(summary, with_cls)
    spread = seed_spread(summary)
    if spread:
        (out / "seeds.json").write_text(json.dumps(spread, indent=1) + "\n")
        lines += _seed_table(spread)
    lines += ["", "![PSNR](rd-psnr.png) ![MS-SSIM](rd-msssim.png)", ""]
    (out / "summary.md").write_text("\n".join(lines))
    _plot(summary, out, title)
    return summary


def _write_json(out: Path, rows: list[dict], summary: dict, title: str, command: str) -> None:
    """per_image.json (one compact row per line), run.json and one CompressAI-style JSON per codec."""
    (out / "per_image.json").write_text(
        "[\n" + ",\n".join(json.dumps(r, separators=(",", ":")) for r in rows) + "\n]\n")
    (out / "run.json").write_text(json.dumps({"title": title, "command": command}, indent=1) + "\n")
    for codec, points in summary.items():
        (out / f"{codec}.json").write_text(json.dumps({
            "name": codec, "description": f"{codec} on {title}",
            "results": {"bpp": [p["bpp"] for p in points], "psnr-rgb": [p["psnr"] for p in points],
                        "ms-ssim-rgb": [p["ms_ssim"] for p in points], "point": [p["point"] for p in points]},
        }, indent=1) + "\n")


def _bd_table(summary: dict, specs: list[CodecSpec]) -> list[str]:
    """The BD-rate table: one row per codec, then one per unavailable codec with its note."""
    lines = [f"BD-rate against {ANCHOR} (negative: fewer bits for the same quality; n/a: the curves do "
             "not overlap in quality):", "",
             "| codec | BD-rate (PSNR) | BD-rate (MS-SSIM) | points | bpp range |", "|---|---|---|---|---|"]
    for codec, points in summary.items():
        bdp, bdm = bd_against(summary, codec, "psnr"), bd_against(summary, codec, "ms_ssim")
        fmt = lambda v: "anchor" if codec == ANCHOR else ("n/a" if not math.isfinite(v) else f"{v:+.1f}%")  # noqa: E731
        lines.append(f"| {codec} | {fmt(bdp)} | {fmt(bdm)} | {len(points)} | "
                     f"{points[0]['bpp']:.3f}-{points[-1]['bpp']:.3f} |")
    for s in specs:
        if s.note:
            lines.append(f"| {s.name} | unavailable | unavailable | 0 | {s.note} |")
    return lines


def _downstream_note(features: dict, classifier_name: str | None) -> list[str]:
    """What the top-1 and FD-UCM columns are, with the classifier's accuracy on the originals."""
    top = features.get(("original-top1", ""), [])
    acc = f"{np.mean(top):.3f}" if top else "n/a (images have no known class)"
    return [f"Downstream: top-1 accuracy of the scene classifier `{classifier_name}` (trained here on UC "
            f"Merced train; on the originals: {acc}) and FD-UCM, the Fréchet distance between its "
            "features of decoded and original images (FID's formula on our classifier: *not* FID, "
            "comparable only within this table).", ""]


def _fmt_delta(value: float, digits: int) -> str:
    """A signed delta, blank when it is not finite."""
    return f"{value:+.{digits}f}" if math.isfinite(value) else ""


def _points_table(summary: dict, with_cls: bool) -> list[str]:
    """The table of every rate point: bpp, PSNR, MS-SSIM, deltas against the anchor, times."""
    extra_h = " top-1 | FD-UCM |" if with_cls else ""
    lines = [f"Δ: the point's PSNR / MS-SSIM minus {ANCHOR}'s at the same bpp (its curve interpolated "
             "over log bpp; blank outside its range): one rate point compared without a curve.", "",
             "| codec | point | bpp | PSNR | MS-SSIM | Δ PSNR | Δ MS-SSIM |" + extra_h + " encode s | decode s |",
             "|---|---|---|---|---|---|---|" + ("---|---|" if with_cls else "") + "---|---|"]
    for codec, points in summary.items():
        for p in points:
            dec = f"{p['decode_s']:.3f}" if math.isfinite(p["decode_s"]) else "(in encode)"
            extra = f" {p['top1']:.3f} | {p.get('fd_ucm', math.nan):.2f} |" if with_cls else ""
            delta = " | ".join(_fmt_delta(v, d) for v, d in zip(delta_vs_anchor(summary, codec, p), (2, 4)))
            lines.append(f"| {codec} | {p['point']} | {p['bpp']:.4f} | {p['psnr']:.2f} | {p['ms_ssim']:.4f} | "
                         f"{delta} |{extra} {p['encode_s']:.3f} | {dec} |")
    return lines


def _seed_table(spread: list[dict]) -> list[str]:
    """The seed-variance table (paper Table 4) of :func:`~cosmic.evaluation.statistics.seed_spread`."""
    lines = ["", "Seed variance (paper Table 4): the same files decoded with each seed; mean ± 2σ over "
             "seeds of the per-seed means.", "",
             "| codec | point | seeds | bpp | PSNR | MS-SSIM |", "|---|---|---|---|---|---|"]
    for r in spread:
        lines.append(f"| {r['codec']} | {r['point']} | {len(r['seeds'])} | {r['bpp']:.4f} | "
                     f"{r['psnr']:.2f} ± {r['psnr_2sigma']:.2f} | {r['ms_ssim']:.4f} ± {r['ms_ssim_2sigma']:.4f} |")
    return lines


def write_stitched(out: Path, scores: list[dict]) -> None:
    """``stitched.json`` and ``stitched.md`` of :func:`~cosmic.evaluation.tileset.stitched_scores`."""
    (out / "stitched.json").write_text(json.dumps(scores, indent=1) + "\n")
    lines = ["# Stitched scenes", "", "Each scene's tiles, coded independently, stitched back and scored "
             "against the original crop. Seam score: tile-border blockiness minus the original's (0: no "
             "visible seams).", "", "| scene | codec | point | PSNR | MS-SSIM | seam |", "|---|---|---|---|---|---|"]
    for s in scores:
        lines.append(f"| {s['scene']} | {s['codec']} | {s['point']} | {s['psnr']:.2f} | {s['ms_ssim']:.4f} | "
                     f"{s['seam']:+.3f} |")
    (out / "stitched.md").write_text("\n".join(lines) + "\n")


def _plot(summary: dict, out: Path, title: str) -> None:
    """``rd-psnr.png`` and ``rd-msssim.png``: every codec's rate-distortion curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for metric, label, name in (("psnr", "PSNR (dB)", "rd-psnr.png"), ("ms_ssim", "MS-SSIM", "rd-msssim.png")):
        fig, ax = plt.subplots(figsize=(6, 4.5), dpi=110)
        for codec, points in summary.items():
            style = "o-" if codec.startswith("cosmic") else ".--"
            ax.plot([p["bpp"] for p in points], [p[metric] for p in points], style, label=codec)
        ax.set_xlabel("bpp (from file bytes)")
        ax.set_ylabel(label)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / name)
        plt.close(fig)
