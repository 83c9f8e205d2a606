"""Decoding many files: ``cosmic decompress DIR_OR_GLOB -o OUTDIR [--jobs N] [--scheduler ADDRESS]``.

A ground station receives thousands of downlinked ``.cosmic`` files. Decoding them one command at
a time pays the interpreter's and the models' start-up for each file; here each worker process
loads every model it needs once (:func:`decode_file` keeps one
:class:`~cosmic.pipelines.decode.DecodePipeline` per model in the process) and decodes file after
file through it. Three ways to run the same per-file task:

* ``jobs=1``: a loop in this process;
* ``jobs=N``: N local worker processes (``concurrent.futures``, spawned: each starts clean);
* ``scheduler=ADDRESS``: a Dask distributed cluster (``tcp://host:8786``), one task per file, or
  ``scheduler="local"`` for a :class:`dask.distributed.LocalCluster` of ``jobs`` processes
  (``pip install 'cosmic[cluster]'``). The output folder must be one that the workers can write.

Every file gets one result line (as it finishes); a file that fails (truncated, corrupt, a model
that is not there) is reported and skipped, and the others go on. Each output is written
atomically (a hidden ``*.partial`` renamed when complete), so an interrupted batch leaves only
whole images, and a re-run with ``skip_existing`` decodes only what is missing.
"""

from __future__ import annotations

import glob
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from cosmic.errors import CosmicError, InputError

__all__ = ["DecodeOptions", "FileResult", "find_inputs", "plan", "decode_file", "run_batch"]


@dataclass(frozen=True)
class DecodeOptions:
    """What every file is decoded with (picklable: it travels to the workers)."""

    model: str | None = None
    steps: int = 0
    seed: int = 0
    conceal: bool = False
    deblock: bool = False
    fmt: str = "png"
    jpeg_quality: int | None = None
    device: str = "cpu"
    precision: str = "fp32"
    threads: int = 0
    dtype: str | None = None  # GeoTIFF outputs: sample type (None: the source's)
    creation_options: tuple[tuple[str, str], ...] = ()  # GeoTIFF outputs: GDAL COG options (--co)
    prior: str | None = None  # a decoder-side prior (shipped name or directory), loaded once per process
    fidelity: float = 0.0


@dataclass
class FileResult:
    source: str
    output: str
    ok: bool
    message: str
    seconds: float
    exit_code: int = 0

    def line(self) -> str:
        status = "ok" if self.ok else "FAILED"
        return f"{self.source} -> {self.output}: {status} {self.message} ({self.seconds:.2f} s)"


_SUFFIX = {"png": ".png", "tiff": ".tif", "jpeg": ".jpg"}


def find_inputs(spec: str | os.PathLike) -> list[Path]:
    """The ``.cosmic`` files a batch decodes: those directly in a folder, those a glob pattern
    matches, or one file (sorted); InputError when there are none."""
    text = str(spec)
    path = Path(text)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".cosmic" and p.is_file())
    elif any(c in text for c in "*?["):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
    else:
        files = [path] if path.is_file() else []
    if not files:
        raise InputError(f"{text}: no .cosmic files found")
    return files


def plan(inputs: list[Path], outdir: Path, fmt: str, skip_existing: bool = False) -> list[tuple[Path, Path]]:
    """(input, output) pairs: ``OUTDIR/STEM.png`` (``.tif`` / ``.jpg``); InputError when two
    inputs would write the same output."""
    pairs, seen = [], {}
    for src in inputs:
        out = outdir / (src.stem + _SUFFIX[fmt])
        if out in seen:
            raise InputError(f"{src} and {seen[out]} would both be decoded to {out}")
        seen[out] = src
        if not (skip_existing and out.exists()):
            pairs.append((src, out))
    return pairs


#: the pipelines and priors this process has loaded, by (model, device, precision) and by name:
#: each is loaded once
_PIPELINES: dict = {}
_PRIORS: dict = {}


def _prior(options: DecodeOptions):
    if options.prior is None:
        return None
    if options.prior not in _PRIORS:
        from cosmic.codebook.prior import load_prior

        _PRIORS[options.prior] = load_prior(options.prior)
    return _PRIORS[options.prior]


def _pipeline(container, options: DecodeOptions):
    from cosmic.pipelines.decode import DecodePipeline, _shipped_model_for

    ref = options.model or _shipped_model_for(container)
    key = (str(ref), options.device, options.precision)
    if key not in _PIPELINES:
        if options.threads > 0:
            import torch

            torch.set_num_threads(options.threads)
        _PIPELINES[key] = DecodePipeline.from_pretrained(ref, device=options.device, precision=options.precision)
    return _PIPELINES[key]


def decode_file(source: str | os.PathLike, output: str | os.PathLike, options: DecodeOptions) -> FileResult:
    """Decode one file to ``output`` (atomically); never raises for a bad file: the result says
    what went wrong (the exit status its error would have had on its own)."""
    from cosmic.errors import first_line
    from cosmic.io.container import read_container

    t0 = time.perf_counter()
    try:
        container = read_container(source, partial=options.conceal)
        pipe = _pipeline(container, options)
        bad = pipe.write(container, output, options.fmt, options.jpeg_quality, options.dtype,
                         dict(options.creation_options), steps=options.steps, seed=options.seed,
                         conceal=options.conceal, deblock=options.deblock, prior=_prior(options),
                         fidelity=options.fidelity)
        h = container.header
        note = f", {len(bad)} tile(s) concealed" if bad else ""
        return FileResult(str(source), str(output), True, f"{h.width}x{h.height} px, {container.bpp:.4f} bpp{note}",
                          time.perf_counter() - t0)
    except CosmicError as exc:
        return FileResult(str(source), str(output), False, first_line(exc, 300), time.perf_counter() - t0,
                          exc.exit_code)
    except Exception as exc:  # a model bug on one file must not stop the batch
        return FileResult(str(source), str(output), False, f"internal error: {type(exc).__name__}: "
                          f"{first_line(exc, 300)}", time.perf_counter() - t0, 70)


def _decode_pair(pair: tuple[str, str], options: DecodeOptions) -> dict:
    return asdict(decode_file(pair[0], pair[1], options))


def run_batch(pairs: list[tuple[Path, Path]], options: DecodeOptions, jobs: int = 1,
              scheduler: str | None = None, on_result: Callable[[FileResult], None] | None = None) -> list[FileResult]:
    """Decode every pair; ``on_result`` is called with each result as it comes (in completion
    order with several workers). Returns the results in that order."""
    work = [(str(a), str(b)) for a, b in pairs]
    if scheduler:
        stream = _on_dask(work, options, scheduler, jobs)
    elif jobs > 1:
        stream = _on_processes(work, options, jobs)
    else:
        stream = (_decode_pair(p, options) for p in work)
    results = []
    for row in stream:
        result = FileResult(**row)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def _on_processes(work: list[tuple[str, str]], options: DecodeOptions, jobs: int) -> Iterator[dict]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = options.threads or max(1, (os.cpu_count() or 1) // jobs)
    opts = DecodeOptions(**{**asdict(options), "threads": threads})
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_decode_pair, p, opts) for p in work]
        for fut in as_completed(futures):
            yield fut.result()


def _on_dask(work: list[tuple[str, str]], options: DecodeOptions, scheduler: str, jobs: int) -> Iterator[dict]:
    """One Dask task per file on the cluster at ``scheduler`` (or a local one for "local")."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise InputError("--scheduler needs Dask distributed: pip install 'cosmic[cluster]'") from None
    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=max(jobs, 1), threads_per_worker=1, processes=True,
                               dashboard_address=None)
        address = cluster
    else:
        address = scheduler
    try:
        client = Client(address, timeout="30s")
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        raise InputError(f"--scheduler {scheduler}: cannot reach the Dask scheduler ({exc})") from None
    try:
        threads = options.threads or 1
        opts = DecodeOptions(**{**asdict(options), "threads": threads})
        futures = client.map(_decode_pair, work, options=opts, pure=False)
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def summary_line(results: Iterable[FileResult], seconds: float) -> tuple[str, int]:
    """(the closing line, the exit status): 0 when every file decoded, else the most severe of
    the failures' statuses (2 input, 3 bitstream, 4 model, 70 internal)."""
    results = list(results)
    failed = [r for r in results if not r.ok]
    rate = len(results) / seconds * 60 if seconds > 0 else 0.0
    line = f"{len(results) - len(failed)} of {len(results)} files decoded in {seconds:.1f} s ({rate:.0f} files/min)"
    if failed:
        line += f"; {len(failed)} failed"
    return line, max((r.exit_code for r in failed), default=0)
