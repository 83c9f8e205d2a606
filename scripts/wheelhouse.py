"""Offline installs (issue 31): download wheels here, install them where there is no network.

    python scripts/wheelhouse.py download DIR [--set all|trainer] [--python-version 3.12] [--skip NAMES]
    python scripts/wheelhouse.py install DIR TARGET [--check]

``download`` runs in the project's venv (``make wheelhouse`` / ``make device-kit``): it pins every
distribution to the version installed and tested here and fetches its wheel with ``pip download
--no-deps --only-binary=:all:``, for this Python or, with ``--python-version``, another one on
manylinux x86-64 (the GPU machine runs 3.12). Which distributions:

* ``all``: every runtime dependency of cosmic (and its ``onnx`` and ``train`` extras where
  installed) that a stock PyTorch machine lacks: the dependency closure, less torch, torchvision
  and everything they pull in. For air-gapped users: ``pip install --no-index --find-links DIR
  cosmic`` after it, with their own torch.
* ``trainer``: only the distributions whose modules the trainer imports (``TRAINER_ENTRY``'s
  imports, read from ``sys.modules`` in a fresh interpreter), less
  ``--skip`` (what the target already has: the GPU image's scipy, numpy, Pillow, typer ... are
  left out of what travels; see ``make device-kit``).

``install`` needs nothing but the standard library and pip (it runs on the GPU machine before any
of our dependencies exist): it installs each wheel of DIR whose distribution this Python does not
already have into TARGET with ``pip install --no-index --no-deps``, never torch or torchvision,
never from the network; with ``--check`` it then imports ``TRAINER_ENTRY`` with TARGET and the
code on the path. A missing or empty DIR is a one-line error (exit 2), never a download.
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import os
import re
import subprocess
import sys
from pathlib import Path

# What `cosmic train stage1` and the device run import, by their entry modules: the trainer's
# distributions are those owning a module in sys.modules after importing these (measured, not listed).
TRAINER_ENTRY = ("cosmic.training.device_run", "cosmic.training.stage1", "cosmic.training.validation",
                 "cosmic.training.datapack", "cosmic.io.container", "cosmic.models.cosmic")
SRC = Path(__file__).resolve().parent.parent / "src"
NEVER = {"torch", "torchvision"}  # the machine's own build (CUDA or not) is kept
# manylinux x86-64 for glibc 2.5-2.39 (pip matches the tags exactly; the GPU image's glibc is 2.39)
PLATFORMS = tuple(f"manylinux_2_{n}_x86_64" for n in range(39, 16, -1)) + (
    "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64")
EXTRAS = ("onnx", "train")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _fail(message: str, code: int = 2) -> None:
    print(f"wheelhouse: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def _requirements(dist: str, extras: tuple[str, ...], python_version: str) -> list[str]:
    """Names of the distributions ``dist`` requires (with ``extras``) for ``python_version``."""
    from packaging.requirements import Requirement

    names = []
    for text in metadata.requires(dist) or []:
        req = Requirement(text)
        envs = [{"python_version": python_version, "extra": e} for e in ("", *extras)]
        if req.marker is None or any(req.marker.evaluate(env) for env in envs):
            names.append(_norm(req.name))
    return names


def closure(roots: list[str], python_version: str, extras: tuple[str, ...] = ()) -> set[str]:
    """Installed distributions reachable from ``roots`` (their requirements, recursively)."""
    seen, todo = set(), [(_norm(r), extras if _norm(r) == "cosmic" else ()) for r in roots]
    while todo:
        name, with_extras = todo.pop()
        if name in seen:
            continue
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # an extra's requirement not installed here: not part of what was tested
        seen.add(name)
        todo += [(n, ()) for n in _requirements(name, with_extras, python_version)]
    return seen


def _selection(which: str, python_version: str, skip: set[str]) -> set[str]:
    stock = closure(sorted(NEVER), python_version)
    build = set()
    if which == "all":  # with the build backend, for `pip install --no-index --find-links DIR .`
        chosen, build = closure(["cosmic"], python_version, EXTRAS), {"setuptools", "wheel"}
    else:
        owners = metadata.packages_distributions()
        chosen = {_norm(d) for m in _imported_modules() for d in owners.get(m, [])}
    return (chosen - stock | build) - NEVER - {"cosmic"} - {_norm(s) for s in skip}


def _imported_modules() -> list[str]:
    """Top-level modules in sys.modules once the trainer's entry modules are imported (in a fresh
    interpreter, so only what they pull in counts)."""
    code = "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)\nprint(' '.join(sorted({n.split('.')[0] for n in sys.modules})))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", code, *TRAINER_ENTRY], env=env, capture_output=True, text=True, check=True)
    return run.stdout.split()


def download(out: Path, which: str, python_version: str | None, skip: set[str]) -> list[str]:
    """Fetch the pinned wheels into ``out``; returns the ``name==version`` pins."""
    target = python_version or f"{sys.version_info.major}.{sys.version_info.minor}"
    pins = sorted(f"{n}=={metadata.version(n)}" for n in _selection(which, target, skip))
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", str(out)]
    if python_version:
        cmd += ["--python-version", python_version, "--implementation", "cp"]
        cmd += [arg for p in PLATFORMS for arg in ("--platform", p)]
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(cmd + pins, check=True)
    (out / "PINS.txt").write_text("\n".join(pins) + "\n")
    return pins


def _wheel_name(path: Path) -> str:
    return _norm(path.name.split("-")[0])


def install(wheels: Path, target: Path, check: bool) -> list[str]:
    """Install the wheels of ``wheels`` this Python lacks into ``target``; returns their names."""
    files = sorted(wheels.glob("*.whl")) if wheels.is_dir() else []
    if not files:
        _fail(f"{wheels}: no wheelhouse here (make it with `make device-kit` or `make wheelhouse` on a "
              "machine with network; this script never downloads)")
    wanted = []
    for f in files:
        name = _wheel_name(f)
        if name in NEVER:
            _fail(f"{f.name}: torch and torchvision are never installed from a wheelhouse (the machine's own are kept)")
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            wanted.append(f)
    if wanted:
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--no-compile",
               "--no-cache-dir", "--disable-pip-version-check", "--target", str(target)]
        if subprocess.run(cmd + [str(f) for f in wanted]).returncode:
            _fail(f"pip could not install the wheels of {wheels} into {target}")
    if check:
        _check_imports(target)
    return [_wheel_name(f) for f in wanted]


def _check_imports(target: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(target), os.environ.get("PYTHONPATH", "")])}
    code = ("import importlib, sys\nbad = []\nfor m in sys.argv[1:]:\n    try: importlib.import_module(m)\n"
            "    except Exception as e: bad.append(f'{m} ({type(e).__name__}: {e})')\n"
            "sys.exit('; '.join(bad) if bad else 0)")
    run = subprocess.run([sys.executable, "-c", code, *TRAINER_ENTRY], env=env, capture_output=True, text=True)
    if run.returncode:
        _fail(f"after the install the trainer still cannot import: {run.stderr.strip().splitlines()[-1]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="verb", required=True)
    d = sub.add_parser("download")
    d.add_argument("out", type=Path)
    d.add_argument("--set", choices=("all", "trainer"), default="all")
    d.add_argument("--python-version", default=None, help="e.g. 3.12 (manylinux x86-64 wheels); default: this Python")
    d.add_argument("--skip", default="", help="comma-separated distributions the target already has")
    i = sub.add_parser("install")
    i.add_argument("wheels", type=Path)
    i.add_argument("target", type=Path)
    i.add_argument("--check", action="store_true", help="import the trainer's modules afterwards")
    args = ap.parse_args()
    if args.verb == "download":
        pins = download(args.out, args.set, args.python_version, set(filter(None, args.skip.split(","))))
        size = sum(f.stat().st_size for f in args.out.glob("*.whl"))
        print(f"{args.out}: {len(pins)} wheels, {size / 2**20:.1f} MiB")
    else:
        names = install(args.wheels, args.target, args.check)
        print(f"installed into {args.target}: {', '.join(names) or 'nothing (all present)'}")


if __name__ == "__main__":
    main()
