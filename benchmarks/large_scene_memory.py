"""Peak memory of compressing and decompressing a large GeoTIFF, window by window.

    .venv/bin/python benchmarks/large_scene_memory.py --size 20000 [--model cosmic-small-vr] [--json]

Writes a synthetic textured, georeferenced RGB GeoTIFF of SIZE x SIZE pixels (tiled, deflate),
then runs ``cosmic compress`` and ``cosmic decompress -o out.tif`` each in a fresh process and
reports its peak resident memory (``ru_maxrss``) beside the scene's raw size. With windowed I/O
the peak should not grow with the scene: compare two sizes. (The test suite runs this script at
small sizes with a tiny model.)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RUN = """
import resource, sys
from cosmic.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    if exc.code:
        raise
print("MAXRSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def write_scene(path: Path, size: int, block: int = 512) -> None:
    """A textured RGB GeoTIFF (UTM 33N, 10 m) written one block at a time."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    profile = {
        "driver": "GTiff", "width": size, "height": size, "count": 3, "dtype": "uint8",
        "crs": "EPSG:32633", "transform": from_origin(500000.0, 5000000.0, 10.0, 10.0),
        "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate", "BIGTIFF": "IF_SAFER",
    }
    rng = np.random.default_rng(0)
    with rasterio.open(path, "w", **profile) as ds:
        for top in range(0, size, block):
            for left in range(0, size, block):
                h, w = min(block, size - top), min(block, size - left)
                yy, xx = np.mgrid[top : top + h, left : left + w].astype(np.float32)
                base = 128 + 60 * np.sin(xx / 37.0) * np.cos(yy / 53.0)
                noise = rng.normal(0, 12, (3, h, w)).astype(np.float32)
                data = np.clip(base[None] + noise + np.array([10, 0, -10])[:, None, None], 0, 255)
                ds.write(data.astype(np.uint8), window=Window(left, top, w, h))


def run_cli(args: list[str]) -> tuple[float, int]:
    """(seconds, peak RSS in MiB) of ``cosmic ARGS`` in a fresh process."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", RUN, *args], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"cosmic {' '.join(args)} failed: {proc.stderr.strip().splitlines()[-1:]}")
    kb = next(int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("MAXRSS_KB"))
    return seconds, kb // 1024


def measure(size: int, model: str, workdir: Path) -> dict:
    scene, coded, decoded = workdir / f"scene{size}.tif", workdir / f"scene{size}.cosmic", workdir / f"out{size}.tif"
    write_scene(scene, size)
    enc_s, enc_mb = run_cli(["compress", str(scene), "-o", str(coded), "-m", model, "-q", "--threads", "1"])
    dec_s, dec_mb = run_cli(["decompress", str(coded), "-o", str(decoded), "-m", model, "-q", "--steps", "0",
                             "--threads", "1"])
    import rasterio

    with rasterio.open(decoded) as ds:
        assert (ds.width, ds.height) == (size, size), "decoded size differs"
    out = {
        "size": size, "raw_mb": size * size * 3 / 2**20, "model": model, "cosmic_bytes": coded.stat().st_size,
        "encode_s": enc_s, "encode_peak_mb": enc_mb, "decode_s": dec_s, "decode_peak_mb": dec_mb,
    }
    for p in (scene, coded, decoded):
        p.unlink()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, nargs="+", default=[2048, 20000])
    ap.add_argument("--model", default="cosmic-small-vr")
    ap.add_argument("--json", action="store_true", help="print one JSON list instead of a table")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(size, args.model, Path(tmp)) for size in args.size]
    if args.json:
        print(json.dumps(rows))
        return
    print(f"{'size':>7} {'raw MiB':>9} {'encode s':>9} {'enc peak MiB':>13} {'decode s':>9} {'dec peak MiB':>13}")
    for r in rows:
        print(f"{r['size']:>7} {r['raw_mb']:>9.0f} {r['encode_s']:>9.1f} {r['encode_peak_mb']:>13} "
              f"{r['decode_s']:>9.1f} {r['decode_peak_mb']:>13}")


if __name__ == "__main__":
    main()
