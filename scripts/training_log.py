"""Print a run's validation curve as a markdown table (the rows of docs/TRAINING_LOG.md): step,
wall time, and real bpp / PSNR / MS-SSIM of the steps-0 decode at each validated quality.

    python scripts/training_log.py runs/vr-campaign
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def rows(run: Path) -> list[str]:
    history = json.loads((run / "last" / "trainer.json").read_text())["history"]
    out = []
    for h in history:
        if "rates" not in h:
            continue
        cells = [f"{r['bpp']:.4f} / {r['psnr']:.2f} / {r['ms_ssim']:.4f}" if r["ms_ssim"] is not None
                 else f"{r['bpp']:.4f} / {r['psnr']:.2f} / -" for r in h["rates"]]
        out.append(f"| {h['step']} | {h['wall_s'] / 3600:.2f} | " + " | ".join(cells) + " |")
    return out


def main() -> None:
    run = Path(sys.argv[1])
    history = json.loads((run / "last" / "trainer.json").read_text())["history"]
    qualities = [r["quality"] for r in history[-1]["rates"]]
    print("| step | wall (h) | " + " | ".join(f"q{q:g}: bpp / PSNR / MS-SSIM" for q in qualities) + " |")
    print("|---|---|" + "---|" * len(qualities))
    print("\n".join(rows(run)))


if __name__ == "__main__":
    main()
