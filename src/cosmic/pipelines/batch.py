"""Many files, one task per file: the runner under ``cosmic compress``, ``decompress`` and
``enhance`` of a folder or glob (``DIR_OR_GLOB -o OUTDIR [--jobs N] [--scheduler ADDRESS]``).

A ground station receives thousands of downlinked files, and a satellite operator codes thousands
of frames. One command per file pays the interpreter's and the models' start-up each time; here
each worker process loads the models it needs once and runs file after file. What a file's task
is lives in its own module, the one-file job that the one-file command and the Python API call
too, so that this runner imports neither side of the codec (the encode task must never load the
ground's code; ``tests/pipelines/test_batch_encode.py`` checks it):

* :mod:`cosmic.pipelines.encode_job`: image -> ``.cosmic`` (:func:`encode_file`);
* :mod:`cosmic.pipelines.decode_job`: ``.cosmic`` -> image (:func:`decode_file`, with an
  optional post-processor);
* :mod:`cosmic.pipelines.enhance_job`: JPEG2000 -> enhanced image (:func:`enhance_file`).

A task is a module-level function ``job(request, loaded) -> result`` (picklable by reference: it
travels to the workers with its request, a frozen dataclass whose ``source`` and ``output`` are
set per file): it writes ``output`` atomically and returns a result whose ``summary()`` is the
result line's message, or raises. ``loaded`` is the worker process's :data:`LOADED`, where the
job keeps the models it loads (:func:`kept`), so each is loaded once per process. Three ways to
run it:

* ``jobs=1``: a loop in this process;
* ``jobs=N``: N local worker processes (``concurrent.futures``, spawned: each starts clean);
* ``scheduler=ADDRESS``: a Dask distributed cluster (``tcp://host:8786``), one task per file, or
  ``scheduler="local"`` for a :class:`dask.distributed.LocalCluster` of ``jobs`` processes
  (``pip install 'cosmic[cluster]'``). The output folder must be one that the workers can write.

Every file gets one result line (as it finishes); a file that fails (unreadable, truncated,
corrupt, a model that is not there) is reported with the exit status it would have had on its
own, and the others go on. Outputs are written atomically (a hidden ``*.partial`` renamed when
complete), so an interrupted batch leaves only whole files, and a re-run with ``skip_existing``
does only what is missing.
"""

from __future__ import annotations

import glob
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from cosmic.errors import CosmicError, InputError

__all__ = ["FileResult", "Job", "find_inputs", "plan", "run_file", "run_batch", "summary_line", "kept", "LOADED",
           "IMAGE_SUFFIX"]

#: a file's task: (request, loaded) -> a result with ``summary()``; raises on failure
Job = Callable[[Any, dict], Any]
#: what this worker process's jobs have loaded (pipelines, post-processors), by their own keys
LOADED: dict = {}
#: the suffix of an image output of each --format
IMAGE_SUFFIX = {"png": ".png", "tiff": ".tif", "jpeg": ".jpg"}


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


def find_inputs(spec: str | os.PathLike, suffixes: tuple[str, ...] = (".cosmic",),
                what: str = ".cosmic") -> list[Path]:
    """The files a batch works on: those with one of ``suffixes`` directly in a folder or among
    a glob pattern's matches, or one file (sorted); InputError ("no ``what`` files") when there
    are none."""
    text = str(spec)
    path = Path(text)
    if path.is_dir():
        found = path.iterdir()
    elif not path.is_file() and any(c in text for c in "*?["):  # a file named 'a[1].cosmic' is itself
        found = (Path(p) for p in glob.glob(text, recursive=True))
    else:
        found = [path] if path.is_file() else []
    files = sorted(p for p in found if p.is_file() and (p == path or p.suffix.lower() in suffixes))
    if not files:
        raise InputError(f"{text}: no {what} files found")
    return files


def plan(inputs: list[Path], outdir: Path, suffix: str, skip_existing: bool = False) -> list[tuple[Path, Path]]:
    """(input, output) pairs: ``OUTDIR/STEM`` + ``suffix``; InputError when two inputs would
    write the same output, or an output would overwrite an input."""
    pairs, seen = [], {}
    sources = {p.resolve() for p in inputs}
    for src in inputs:
        out = outdir / (src.stem + suffix)
        if out in seen:
            raise InputError(f"{src} and {seen[out]} would both be written to {out}")
        if out.resolve() in sources:
            raise InputError(f"{out}: the output would overwrite an input; choose another output folder")
        seen[out] = src
        if not (skip_existing and out.exists()):
            pairs.append((src, out))
    return pairs


def kept(loaded: dict | None, key: tuple, load: Callable[[], Any]) -> Any:
    """``load()``, kept in ``loaded`` under ``key`` (loaded once) when a worker passes its
    :data:`LOADED`; loaded afresh when ``loaded`` is None (one file, the Python API)."""
    if loaded is None:
        return load()
    if key not in loaded:
        loaded[key] = load()
    return loaded[key]


def run_file(job: Job, source: str | os.PathLike, output: str | os.PathLike, request) -> FileResult:
    """Run ``job`` on one file (``request`` with its ``source`` and ``output``, the worker's
    :data:`LOADED`); never raises for a bad file: the result says what went wrong, with the exit
    status its error would have had on its own (2 input, 3 bitstream, 4 model, 70 a bug)."""
    from cosmic.errors import cli_terms, first_line

    t0 = time.perf_counter()
    try:
        message = job(replace(request, source=Path(source), output=Path(output)), LOADED).summary()
        return FileResult(str(source), str(output), True, message, time.perf_counter() - t0)
    except CosmicError as exc:
        return FileResult(str(source), str(output), False, cli_terms(first_line(exc, 300)), time.perf_counter() - t0,
                          exc.exit_code)
    except Exception as exc:  # a model bug on one file must not stop the batch
        return FileResult(str(source), str(output), False, f"internal error: {type(exc).__name__}: "
                          f"{first_line(exc, 300)}", time.perf_counter() - t0, 70)


def _run_pair(pair: tuple[str, str], job: Job, request, threads: int) -> dict:
    """One file in a worker (a plain dict crosses process boundaries); ``threads`` > 0 sets
    torch's thread count first."""
    if threads > 0:
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    return asdict(run_file(job, pair[0], pair[1], request))


def run_batch(job: Job, pairs: list[tuple[Path, Path]], request, jobs: int = 1, scheduler: str | None = None,
              threads: int = 0, on_result: Callable[[FileResult], None] | None = None) -> list[FileResult]:
    """Run ``job`` on every pair (``request`` with each one's source and output), in this process
    (``jobs`` 1), on ``jobs`` processes or on Dask
    (``scheduler``); ``threads``: torch threads per worker (0: this process's as they are, a
    process's share of the cores, 1 on Dask). ``on_result`` is called with each result as it
    comes (in completion order with several workers). Returns the results in that order."""
    work = [(str(a), str(b)) for a, b in pairs]
    if scheduler:
        stream = _on_dask(work, job, request, scheduler, jobs, threads or 1)
    elif jobs > 1:
        stream = _on_processes(work, job, request, jobs, threads or max(1, (os.cpu_count() or 1) // jobs))
    else:
        stream = (_run_pair(p, job, request, threads) for p in work)
    results = []
    for row in stream:
        result = FileResult(**row)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def _on_processes(work: list[tuple[str, str]], job: Job, request, jobs: int, threads: int) -> Iterator[dict]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_run_pair, p, job, request, threads) for p in work]
        for fut in as_completed(futures):
            yield fut.result()


def _on_dask(work: list[tuple[str, str]], job: Job, request, scheduler: str, jobs: int,
             threads: int) -> Iterator[dict]:
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
        futures = client.map(_run_pair, work, job=job, request=request, threads=threads, pure=False)
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def summary_line(results: Iterable[FileResult], seconds: float, done: str = "decoded") -> tuple[str, int]:
    """(the closing line, the exit status): 0 when every file was ``done``, else the most severe
    of the failures' statuses (2 input, 3 bitstream, 4 model, 70 internal)."""
    results = list(results)
    failed = [r for r in results if not r.ok]
    rate = len(results) / seconds * 60 if seconds > 0 else 0.0
    line = f"{len(results) - len(failed)} of {len(results)} files {done} in {seconds:.1f} s ({rate:.0f} files/min)"
    if failed:
        line += f"; {len(failed)} failed"
    return line, max((r.exit_code for r in failed), default=0)
