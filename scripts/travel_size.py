"""What a device call would carry (issue 31): the tracked files present in the work tree, the
untracked files git does not ignore, and the carried paths, against the device tool's 64 MiB.

    python scripts/travel_size.py [--carry .device-kit] [--home-only]

``--home-only`` counts the tree as ``make device-tree`` leaves it: without the paths listed in
``scripts/device-tree.home`` (shipped weights, docs, tests, benchmarks: training reads none of
them), which stay at home for the duration of the call. Exits 1 when over the limit.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

LIMIT_MIB = 64.0
ROOT = Path(__file__).resolve().parent.parent
HOME_ONLY = ROOT / "scripts" / "device-tree.home"


def git_files(*args: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z", *args], cwd=ROOT, capture_output=True, check=True).stdout
    return [p for p in out.decode().split("\0") if p]


def home_prefixes() -> list[str]:
    return [line.strip() for line in HOME_ONLY.read_text().splitlines() if line.strip() and not line.startswith("#")]


def size_of(paths: list[str], drop: list[str] = ()) -> int:
    """Bytes of the files among ``paths`` present on disk, less those under a ``drop`` prefix."""
    return sum((ROOT / p).stat().st_size for p in paths
               if (ROOT / p).is_file() and not any(p.startswith(d) for d in drop))


def carried_size(carry: list[str]) -> int:
    total = 0
    for item in map(Path, carry):
        item = item if item.is_absolute() else ROOT / item
        files = [item] if item.is_file() else [f for f in item.rglob("*") if f.is_file()] if item.is_dir() else []
        total += sum(f.stat().st_size for f in files)
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--carry", action="append", default=[], help="a carried path (repeatable)")
    ap.add_argument("--home-only", action="store_true", help="as `make device-tree` leaves the tree")
    args = ap.parse_args()
    drop = home_prefixes() if args.home_only else []
    parts = {"tracked": size_of(git_files(), drop), "untracked": size_of(git_files("--others", "--exclude-standard"), drop),
             "carried": carried_size(args.carry)}
    total = sum(parts.values()) / 2**20
    print(", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in parts.items()) + f"; total {total:.1f} MiB of {LIMIT_MIB:.0f}")
    return 0 if total <= LIMIT_MIB else 1


if __name__ == "__main__":
    sys.exit(main())
