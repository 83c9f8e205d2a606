"""Fuzz ``cosmic decompress`` with mutated ``.cosmic`` files; a table of outcomes per mutation kind.

    .venv/bin/python benchmarks/fuzz_bitstreams.py --n 300 --seed 0 [--model DIR] [--timeout 60]

A base file (6 tiles of the bundled-sample-like test image, coded by ``--model``; default the
tiny test model, so a case takes a fraction of a second) is mutated by one of these kinds:

* ``bitflip`` 1-8 bit flips anywhere; ``overwrite`` a run of 1-16 random bytes; ``truncate`` a
  cut anywhere; ``insert`` / ``delete`` 1-64 bytes anywhere;
* ``header`` random bytes in the header body, header CRC recomputed; ``extension`` a forged JSON
  extension block (random types and nesting), CRC recomputed; ``table`` random tile lengths or
  CRCs, table CRC recomputed; ``payload`` tile bytes changed and the tile's CRC recomputed
  (reaches the rANS decoder); ``regrid`` another width / height / tile size, CRC recomputed.

The kinds of issue 34 (the defects an independent audit found) mutate a second base file, a
uint16 four-band GeoTIFF product with fill (band groups 1,2,3 : 4, a mask, a stretch per band,
sensor metadata), decoded to a GeoTIFF, each with the header CRC recomputed:

* ``bignum`` a number of the extension (metadata, nodata, transform, scale) replaced by a huge
  JSON number (beyond float's range, or thousands of digits); ``date`` the timestamp replaced by
  an edge date (years 1 and 9999 with UTC offsets, leap days, nonsense);
* ``groupmodel`` ``layout.models`` naming shipped or made-up models with right or wrong digests;
  ``groups`` the second band group's payload bytes changed (CRC stale or recomputed);
* ``dtype`` the source's sample type replaced by a numpy / GDAL type name, or its per-band lists
  (scale, bands, names) of another length or inverted.

Every case is decoded twice (every other round of kinds with ``--conceal``) by a watchdog worker process that
runs ``cosmic.cli.main`` in-process; a worker that dies is a *crash*, one that does not answer
within ``--timeout`` a *hang* (both restart it). Outcomes: ``ok`` (exit 0), ``clean`` (exit
2/3/4 with one line on stderr), ``crash``, ``hang``, ``internal`` (exit 70 or any other exit, or
an error that is not one line), ``nondet`` (the two decodes differ in exit status, pixels or
message), ``partial`` (a ``.partial`` output left behind), ``api`` (the issue 34 kinds without
``--conceal`` are also decoded by :func:`cosmic.decompress`: it succeeded where the CLI failed,
or the reverse; an exception that is not a CosmicError is ``internal``). Exit status 1 when any
case is crash / hang / internal / nondet / partial / api. Progress goes to stderr every 500 cases.

Throughput: the worker stays up between cases (one import of torch and one model load, not one per
decode), so a case (two decodes of a 6-tile file) costs about 0.25 s of one core; ``--n 10000``
took 42 min on one niced core of a machine shared with two training runs
(``benchmarks/results/fuzz_bitstreams-n10000-seed0.md``).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import resource
import select
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "fixtures" / "tiny-model"
KINDS = ["bitflip", "overwrite", "truncate", "insert", "delete", "header", "extension", "table",
         "payload", "regrid", "bignum", "date", "groupmodel", "groups", "dtype"]
#: the kinds that mutate the GeoTIFF product base file (decoded to .tif)
PRODUCT_KINDS = ("bignum", "date", "groupmodel", "groups", "dtype")
OUTCOMES = ["ok", "clean", "crash", "hang", "internal", "nondet", "partial", "api"]
#: the outcomes that fail the run
BAD = ("crash", "hang", "internal", "nondet", "partial", "api")


# -- the worker -------------------------------------------------------------------------------
def decode_once(path: str, model: str, conceal: bool, out: Path) -> tuple[int, str, str]:
    """(exit status, digest of the output file, stderr) of one in-process decode; a leftover
    partial output counts as an output (its digest is prefixed ``partial:``)."""
    from cosmic.cli import main

    out.unlink(missing_ok=True)
    for left in out.parent.glob(f".{out.name}.partial*"):
        left.unlink()
    err, saved = io.StringIO(), (sys.stdout, sys.stderr)
    sys.stdout, sys.stderr = io.StringIO(), err
    code = 0
    try:
        main(["decompress", path, "-o", str(out), "-m", model, "-q", "--steps", "0"]
             + (["--conceal"] if conceal else []))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.stdout, sys.stderr = saved
    digest = hashlib.sha256(out.read_bytes()).hexdigest()[:16] if out.exists() else ""
    if list(out.parent.glob(f".{out.name}.partial*")):
        digest = "partial:" + digest
    return code, digest, err.getvalue()


def api_once(path: str, model: str) -> tuple[int, str, str]:
    """(exit status the CLI would give, digest of the array, one-line message) of one
    :func:`cosmic.decompress` of the file (the API's product: every band group)."""
    import cosmic
    from cosmic.errors import CosmicError

    try:
        pixels = cosmic.decompress(path, model=model)
    except CosmicError as exc:
        return exc.exit_code, "", f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - any other exception is an internal error
        return 70, "", f"{type(exc).__name__}: {exc}"
    return 0, hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest()[:16], ""


def worker(model: str) -> None:
    """Answer one JSON line per request line ``{"path", "conceal", "suffix", "api"}``: both CLI
    decodes' results, then with ``api`` the result of a decode through the Python API."""
    import torch

    torch.set_num_threads(1)
    folder = Path(tempfile.mkdtemp())
    for line in sys.stdin:
        req = json.loads(line)
        out = folder / f"out{req.get('suffix', '.png')}"
        runs = [decode_once(req["path"], model, req["conceal"], out) for _ in range(2)]
        if req.get("api"):
            runs.append(api_once(req["path"], model))
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # this worker's peak so far
        sys.stdout.write(json.dumps({"runs": runs, "peak_mb": peak_mb}) + "\n")
        sys.stdout.flush()


class Watchdog:
    """A worker process with a per-case deadline; restarted after a crash or a hang."""

    def __init__(self, model: str, timeout: float):
        self.model, self.timeout, self.proc = model, timeout, None
        self.peak_mb, self.slowest_s = 0.0, 0.0  # the largest worker RSS and the slowest case seen

    def _start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        env.pop("COSMIC_DEBUG", None)
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker", self.model], env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def decode(self, path: Path, conceal: bool, suffix: str = ".png", api: bool = False):
        """Two decodes' results (to an output of ``suffix``; with ``api`` then one through the
        Python API), or ``"crash"`` / ``"hang"``."""
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        request = {"path": str(path), "conceal": conceal, "suffix": suffix, "api": api}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        start = time.monotonic()
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
        line = self.proc.stdout.readline() if ready else None
        if line:
            answer = json.loads(line)
            self.peak_mb = max(self.peak_mb, answer["peak_mb"])
            self.slowest_s = max(self.slowest_s, time.monotonic() - start)
            return answer["runs"]
        self.close()
        return "hang" if line is None else "crash"  # no answer in time / the worker died

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def classify(result) -> str:
    """One of :data:`OUTCOMES` for a watchdog result (two CLI decodes and perhaps an API decode,
    or "crash" / "hang"). ``api``: the API decoded a file the CLI refused, or the reverse (asked
    only without --conceal, which the API does not have)."""
    if isinstance(result, str):
        return result
    (code, digest, err), second, *api = result
    if [code, digest, err] != list(second):
        return "nondet"
    if api and api[0][0] == 70:
        return "internal"
    if api and (api[0][0] == 0) != (code == 0):
        return "api"
    if digest.startswith("partial:"):  # an output left half-written
        return "partial"
    if code == 0:
        return "ok"
    lines = [line for line in err.splitlines() if line.strip()]
    if code in (2, 3, 4) and len(lines) == 1 and lines[0].startswith("cosmic: error:"):
        return "clean"
    return "internal"


# -- mutations --------------------------------------------------------------------------------
class Layout:
    """Where the header, tile table and payloads of the base file are."""

    def __init__(self, path: Path):
        from cosmic.io.container import MAGIC, Container

        c = Container(path)
        self.data = path.read_bytes()
        self.header, self.offsets, self.entries = c.header, c.offsets, c.entries
        self.head_end = len(MAGIC) + 6 + struct.unpack_from("<I", self.data, len(MAGIC) + 2)[0]
        self.table_at = self.head_end + 4
        self.payload_at = c.payload_start


def _with_header(lay: Layout, blob: bytes) -> bytes:
    """The base file with header body ``blob`` and a valid header CRC."""
    head = struct.pack("<HI", lay.header.format_version, len(blob)) + blob
    return lay.data[:8] + head + struct.pack("<I", zlib.crc32(head)) + lay.data[lay.table_at:]


def _with_table(lay: Layout, entries: list[tuple[int, int]], data: bytes | None = None) -> bytes:
    """``data`` (default: the base file) with tile table ``entries`` and a valid table CRC."""
    data = lay.data if data is None else data
    table = b"".join(struct.pack("<II", n, c) for n, c in entries)
    return data[: lay.table_at] + table + struct.pack("<I", zlib.crc32(table)) + data[lay.payload_at:]


def _random_json(rng, depth: int = 0):
    """A random JSON value: wrong types, huge numbers, control characters, deep nesting."""
    kind = int(rng.integers(0, 7 if depth < 40 else 5))
    simple = [None, True, float(rng.normal() * 10 ** rng.integers(0, 12)), "x\n\x1b[31m",
              int(rng.integers(-(2**40), 2**40))]
    if kind < 5:
        return simple[kind]
    if kind == 5:
        return [_random_json(rng, depth + 1) for _ in range(int(rng.integers(0, 3)))]
    keys = ["metadata", "georef", "gsd", "utm", "timestamp", "crs", "transform", "nodata", "source",
            "bands", "scale", "cloud_cover"]
    return {str(rng.choice(keys)): _random_json(rng, depth + 1) for _ in range(int(rng.integers(0, 4)))}


def _extension(lay: Layout, rng) -> bytes:
    """The header with a forged JSON extension block."""
    import copy

    h = copy.copy(lay.header)
    h.metadata, h.georef = {}, None
    base = h.pack()[:-4]  # without its (empty) extension block
    ext = {"metadata": _random_json(rng), "georef": _random_json(rng)} if rng.random() < 0.7 else _random_json(rng)
    raw = json.dumps(ext).encode()
    return _with_header(lay, base + struct.pack("<I", len(raw)) + raw)


def _regrid(lay: Layout, rng) -> bytes:
    """The header with another width, height or tile size (tile table and payloads kept)."""
    import copy

    h = copy.copy(lay.header)
    field = rng.choice(["width", "height", "tile"])
    if field == "tile":
        h.tile = int(rng.choice([64, 128, 192, 512, 4096]))
        h.latent = (h.tile // 64, h.tile // 64)
    else:
        setattr(h, field, int(rng.choice([1, 255, 256, 257, 511, 513, 1024, 1 << 20])))
    return _with_header(lay, h.pack())


def mutate(kind: str, lay: Layout, rng) -> bytes:
    """The base file damaged by one mutation of ``kind``."""
    data, n = bytearray(lay.data), len(lay.data)
    at = int(rng.integers(0, n))
    if kind == "bitflip":
        for i in rng.integers(0, n * 8, int(rng.integers(1, 9))):
            data[int(i) // 8] ^= 1 << (int(i) % 8)
    elif kind == "overwrite":
        run = rng.integers(0, 256, int(rng.integers(1, 17)), dtype=np.uint8).tobytes()
        data[at : at + len(run)] = run
    elif kind == "truncate":
        del data[at:]
    elif kind == "insert":
        data[at:at] = rng.integers(0, 256, int(rng.integers(1, 65)), dtype=np.uint8).tobytes()
    elif kind == "delete":
        del data[at : at + int(rng.integers(1, 65))]
    elif kind in PRODUCT_MUTATIONS:
        return PRODUCT_MUTATIONS[kind](lay, rng)
    else:
        return _structured(kind, lay, rng)
    return bytes(data)


def _structured(kind: str, lay: Layout, rng) -> bytes:
    """Mutations of one structure with its CRC recomputed (a forger's, or an unlucky, damage)."""
    if kind == "header":
        blob = bytearray(lay.data[14 : lay.head_end])
        for i in rng.integers(0, len(blob), int(rng.integers(1, 4))):
            blob[int(i)] = int(rng.integers(0, 256))
        return _with_header(lay, bytes(blob))
    if kind == "extension":
        return _extension(lay, rng)
    if kind == "regrid":
        return _regrid(lay, rng)
    entries = list(lay.entries)
    i = int(rng.integers(0, len(entries)))
    if kind == "table":
        length, crc = entries[i]
        entries[i] = (int(rng.integers(0, 2 * length + 2)), crc) if rng.random() < 0.5 else (length, int(rng.integers(0, 2**32)))
        return _with_table(lay, entries)
    data = bytearray(lay.data)  # payload: change the tile, keep its CRC valid
    start, length = lay.offsets[i], entries[i][0]
    for j in rng.integers(0, max(1, length), int(rng.integers(1, 9))):
        data[start + int(j) % max(1, length)] = int(rng.integers(0, 256))
    entries[i] = (length, zlib.crc32(bytes(data[start : start + length])))
    return _with_table(lay, entries, bytes(data))


# -- the kinds of issue 34, on the GeoTIFF product base file -----------------------------------
_BIG = ["1" + "0" * 308, "-1" + "0" * 309, "2" + "0" * 400, "9" * 5000, "1e308", "-1.7976931348623157e308",
        "1e309", "4" * 4301, "0.5", "-0"]
_DATES = ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "2016-02-29T12:00:00Z",
          "2015-02-29T12:00:00Z", "1960-01-01T00:00:00+00:01", "2200-12-31T23:59:59-00:01", "T", "",
          "2016-06-25T18:55:50.123456789Z", "+002016-06-25"]
_DTYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float16", "float32",
           "float64", "complex64", "complex128", "object", "V8", "M8", "m8", "bool", "str_", "U3", "float", "", "x"]


def _with_extension(lay: Layout, edit, raw: str | None = None) -> bytes:
    """The base file with its header's metadata / georef / layout changed by ``edit(header)``; a
    string value ``"@@"`` in them is then replaced by the JSON text ``raw`` (numbers JSON can hold
    but Python's json would not write)."""
    import copy

    h = copy.deepcopy(lay.header)
    edit(h)
    blob = h.pack()
    if raw is not None:
        ext_len = _extension_length(blob)
        ext = blob[len(blob) - ext_len:].replace(b'"@@"', raw.encode(), 1)
        blob = blob[: len(blob) - ext_len - 4] + struct.pack("<I", len(ext)) + ext
    return _with_header(lay, blob)


def _extension_length(blob: bytes) -> int:
    """The length of the JSON extension block that ends a packed header body (the u32 before it)."""
    return next(n for n in range(len(blob) - 4, -1, -1)
                if struct.unpack_from("<I", blob, len(blob) - n - 4)[0] == n and blob[len(blob) - n:][:1] == b"{")


def _big_number(rng) -> str:
    """JSON number text: mostly an integer around float's limit (10^305..10^420), else an
    exponent literal near it, or a listed edge case (thousands of digits, small ones)."""
    pick = rng.random()
    if pick < 0.6:
        return ("-" if rng.random() < 0.3 else "") + str(int(rng.integers(1, 10))) + "0" * int(rng.integers(305, 420))
    if pick < 0.8:
        return f"{int(rng.integers(1, 10))}e{int(rng.integers(300, 330))}"
    return str(rng.choice(_BIG))


def _edge_date(rng) -> str:
    """An ISO 8601 time: mostly at the ends of datetime's range or of ours, with a UTC offset."""
    if rng.random() < 0.3:
        return str(rng.choice(_DATES))
    year = int(rng.choice([1, 2, 1959, 1960, 2200, 2201, 9998, 9999]))
    offset = f"{'+-'[int(rng.integers(0, 2))]}{int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}"
    day = "01-01T00:00:00" if rng.random() < 0.5 else "12-31T23:59:59"
    return f"{year:04d}-{day}{offset}"


def _bignum(lay: Layout, rng) -> bytes:
    """A number of the extension replaced by a huge JSON number."""
    paths = [("metadata", "gsd"), ("metadata", "cloud_cover"), ("metadata", "sun_elevation_dbl"),
             ("georef", "nodata"), ("georef", "transform", int(rng.integers(0, 6))),
             ("georef", "source", "scale", int(rng.integers(0, 4)), int(rng.integers(0, 2)))]
    path = paths[int(rng.integers(0, len(paths)))]

    def edit(h):
        node = getattr(h, path[0])
        for key in path[1:-1]:
            node = node[key]
        node[path[-1]] = "@@"
    return _with_extension(lay, edit, _big_number(rng))


def _date(lay: Layout, rng) -> bytes:
    """The timestamp replaced by an edge date."""
    def edit(h):
        h.metadata["timestamp"] = _edge_date(rng)
    return _with_extension(lay, edit)


def _group_models(lay: Layout, rng) -> bytes:
    """``layout.models`` naming shipped or made-up models, with right or wrong digests."""
    names = [lay.header.model, "cosmic-small-vr", "cosmic-small-vr-gray", "no-such-model"]
    digests = [lay.header.model_sha256[:32], "0" * 32, "f" * 32, "abc"]

    def entry():
        if rng.random() < 0.25:
            return None
        return {"model": str(rng.choice(names)), "sha256": str(rng.choice(digests))}

    def edit(h):
        h.layout["models"] = [entry() for _ in range(h.planes + int(rng.integers(-1, 2)) * (rng.random() < 0.2))]
    return _with_extension(lay, edit)


def _later_group(lay: Layout, rng) -> bytes:
    """Bytes of a tile of the second band group changed; its CRC recomputed or left stale."""
    grid = lay.header.grid_tiles
    i = grid + int(rng.integers(0, grid))
    data = bytearray(lay.data)
    start, length = lay.offsets[i], lay.entries[i][0]
    for j in rng.integers(0, max(1, length), int(rng.integers(1, 5))):
        data[start + int(j) % max(1, length)] = int(rng.integers(0, 256))
    if rng.random() < 0.5:
        return bytes(data)
    entries = list(lay.entries)
    entries[i] = (length, zlib.crc32(bytes(data[start : start + length])))
    return _with_table(lay, entries, bytes(data))


def _dtype(lay: Layout, rng) -> bytes:
    """The source's sample type renamed, or a per-band list of another length or inverted."""
    def edit(h):
        src = h.georef["source"]
        what = int(rng.integers(0, 4))
        if what == 0:
            src["source_dtype"] = str(rng.choice(_DTYPES))
        elif what == 1:
            src["scale"] = [[hi, lo] for lo, hi in src["scale"]] if rng.random() < 0.5 else src["scale"][:1]
        else:
            key = ["bands", "descriptions", "colorinterp"][int(rng.integers(0, 3))]
            src[key] = (src.get(key) or [None] * h.channels)[: int(rng.integers(0, h.channels + 2))]
    return _with_extension(lay, edit)


PRODUCT_MUTATIONS = {"bignum": _bignum, "date": _date, "groupmodel": _group_models, "groups": _later_group,
                     "dtype": _dtype}


def product_file(model: str, folder: Path) -> Path:
    """A uint16 four-band GeoTIFF with fill (200 x 300, band groups 1,2,3 : 4, stretched per band,
    a timestamp beside it) coded by ``model``: the base of :data:`PRODUCT_KINDS`."""
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import golden_image, write_tif

    from cosmic.cli import main

    img = golden_image(200, 300).transpose(2, 0, 1).astype(np.float64)
    dn = np.rint(6000 + np.concatenate([img, img[:1]]) * 90).astype(np.uint16)
    dn[:, :40, :60] = 0  # a fill corner
    src = write_tif(folder / "product.tif", dn, "uint16", descriptions=["B4", "B3", "B2", "B5"])
    (folder / "product.json").write_text(json.dumps({"timestamp": "2016-06-25T18:55:50Z", "cloud_cover": 3.5,
                                                      "sun_elevation_dbl": 60.1}))
    path = folder / "product.cosmic"
    main(["compress", str(src), "-o", str(path), "-m", model, "--scale", "auto", "-q", "--threads", "1"])
    return path


# -- the run ----------------------------------------------------------------------------------
def base_file(model: str, folder: Path) -> Path:
    """A 300 x 520 test image (2 x 3 tiles, with metadata) coded by ``model`` (through the CLI's
    pipeline, as every entry point codes)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import golden_image
    from PIL import Image

    from cosmic.cli import main

    Image.fromarray(golden_image(300, 520)).save(folder / "base.png")
    (folder / "base.json").write_text(json.dumps({"gsd": 0.3}))
    path = folder / "base.cosmic"
    main(["compress", str(folder / "base.png"), "-o", str(path), "-m", model, "-q", "--threads", "1"])
    return path


def run(n: int, seed: int, model: str, timeout: float, stats: dict | None = None) -> dict[str, dict[str, int]]:
    """Fuzz ``n`` cases; returns {kind: {outcome: count}}. ``stats``, if given, receives the
    worker's peak RSS (``peak_mb``) and the slowest case's seconds (``slowest_s``, two decodes)."""
    folder = Path(tempfile.mkdtemp())
    plain, product = Layout(base_file(model, folder)), Layout(product_file(model, folder))
    rng = np.random.default_rng(seed)
    table = {k: dict.fromkeys(OUTCOMES, 0) for k in KINDS}
    dog, start = Watchdog(model, timeout), time.monotonic()
    try:
        for case in range(n):
            kind = KINDS[case % len(KINDS)]
            path = folder / "case.cosmic"
            path.write_bytes(mutate(kind, product if kind in PRODUCT_KINDS else plain, rng))
            conceal = bool(case // len(KINDS) % 2)  # every kind with and without --conceal
            suffix = ".tif" if kind in PRODUCT_KINDS else ".png"
            api = kind in PRODUCT_KINDS and not conceal  # the API has no --conceal
            table[kind][classify(dog.decode(path, conceal, suffix, api))] += 1
            if (case + 1) % 500 == 0:
                print(f"{case + 1}/{n} cases, {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)
    finally:
        dog.close()
    if stats is not None:
        stats.update(peak_mb=dog.peak_mb, slowest_s=dog.slowest_s, seconds=time.monotonic() - start)
    return table


def format_table(table: dict[str, dict[str, int]]) -> str:
    """A markdown table of outcomes per kind, with a total row."""
    rows = ["| kind | cases | " + " | ".join(OUTCOMES) + " |", "|---" * (len(OUTCOMES) + 2) + "|"]
    totals = dict.fromkeys(OUTCOMES, 0)
    for kind, counts in table.items():
        rows.append(f"| {kind} | {sum(counts.values())} | " + " | ".join(str(counts[o]) for o in OUTCOMES) + " |")
        for o in OUTCOMES:
            totals[o] += counts[o]
    rows.append(f"| all | {sum(totals.values())} | " + " | ".join(str(totals[o]) for o in OUTCOMES) + " |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default=str(TINY))
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds a case may take (both decodes)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker)
    sys.path.insert(0, str(ROOT / "src"))
    stats: dict = {}
    table = run(args.n, args.seed, args.model, args.timeout, stats)
    print(f"fuzz_bitstreams --n {args.n} --seed {args.seed} --model {Path(args.model).name}")
    print(format_table(table))
    print(f"\n{stats['seconds']:.0f} s; slowest case {stats['slowest_s']:.1f} s (two decodes); "
          f"worker peak RSS {stats['peak_mb']:.0f} MB")
    bad = sum(c[o] for c in table.values() for o in BAD)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
