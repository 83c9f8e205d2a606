"""The stage-1 campaign's training curve (issue 30): campaign step, logged wall time and the PSNR
distance to JPEG2000 at equal bpp on the 42-image validation subset, from docs/TRAINING_LOG.md.

    python scripts/campaign_curve.py [docs/TRAINING_LOG.md]

Reads the JPEG2000 anchor (the log's first table, eight rates on the same 42 images) and every
campaign validation row (three qualities, q1 / q3.5 / q6, real files, steps-0 decode) and prints
each point's PSNR minus JPEG2000's at the same bpp (:func:`~cosmic.evaluation.bjontegaard.
quality_at_rate`; blank below the anchor's lowest rate). No BD-rate: three points 0.06-0.32 bpp
apart are too few for one (a PCHIP through them bows between q1 and q3.5 and reads up to 5 %
fewer bits than JPEG2000 there, where the six-point evaluations put the model 0.3-0.45 dB under
it); the cycle ends' six-point BD-rates on all 420 val images are in the log's evaluation sections.
Wall time: the hours each table logs, summed over the tables (a restart within a table counts
from zero again); "-" where the log has none.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from cosmic.evaluation.bjontegaard import quality_at_rate

TRIPLE = re.compile(r"(\d+\.\d+) / (\d+\.\d+) / (\d\.\d+)")
#: tables whose rows give only the cycle step: the campaign step of their cycle's start
CYCLE_START = {"**Warm start": 0, "**Eighth cycle": 39982}


def _anchor(lines: list[str]) -> tuple[list[float], list[float]]:
    rows = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in lines if line.startswith("| bpp")
            or line.startswith("| PSNR")}
    return [float(v) for v in rows["bpp"]], [float(v) for v in rows["PSNR (dB)"]]


def _rows(lines: list[str]):
    """(campaign step, wall hours or None, [(bpp, psnr) x 3]) of every campaign validation row."""
    offset, table_wall, last = None, 0.0, 0.0
    for line in lines:
        starts = [k for k in CYCLE_START if line.startswith(k)]
        if starts or line.startswith("| cycle step | campaign step"):
            offset, table_wall, last = (CYCLE_START[starts[0]] if starts else "column"), table_wall + last, 0.0
        elif line.startswith("**") or line.startswith("#"):
            offset = None  # another run's table (from scratch, refits, A/Bs) is not the campaign
        cells = [c.strip() for c in line.split("|")[1:-1]]
        points = TRIPLE.findall(line)
        if offset is None or len(points) != 3 or not cells[0].isdigit():
            continue
        step = int(cells[1]) if offset == "column" else int(cells[0]) + offset
        wall_cell = cells[2] if offset == "column" else cells[1]
        wall = None
        if wall_cell.replace(".", "").isdigit():
            w = float(wall_cell)
            table_wall += w - last if w >= last else w
            last, wall = w, table_wall
        yield step, wall, [(float(b), float(p)) for b, p, _ in points]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log", nargs="?", type=Path, default=Path("docs/TRAINING_LOG.md"))
    lines = ap.parse_args().log.read_text().splitlines()
    rate, psnr = _anchor(lines)
    print("| campaign step | wall (h) | q1: bpp, Δ dB | q3.5: bpp, Δ dB | q6: bpp, Δ dB |")
    print("|---|---|---|---|---|")
    for step, wall, points in _rows(lines):
        cells = []
        for bpp, db in points:
            delta = db - quality_at_rate(rate, psnr, bpp)
            cells.append(f"{bpp:.3f}, {'' if delta != delta else f'{delta:+.2f}'}")
        print(f"| {step} | {'-' if wall is None else f'{wall:.1f}'} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
