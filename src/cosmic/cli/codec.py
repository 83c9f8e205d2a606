"""``cosmic compress``, ``cosmic decompress`` and ``cosmic enhance``: one file, or many into a folder
(:mod:`cosmic.pipelines.batch`). Parsing and printing only; the work is the pipelines'."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from cosmic.cli.app import app, check_output, clean, note, set_threads
from cosmic.cli.options import (BANDS, BPP, DERIVE, DEVICE, ENCODER, FIDELITY, GROUPS, MANY, MASK, MAX_BYTES, META,
                                PRECISION, PRIOR, PRODUCT, QUALITY, QUIET, REGION, SCALE, THREADS)
from cosmic.errors import InputError


@app.command()
def compress(
    input: Path = typer.Argument(..., help="PNG / JPEG / TIFF / GeoTIFF image"),
    output: Path = typer.Option(..., "-o", "--output", help="the .cosmic file to write"),
    quality: Optional[float] = QUALITY, bpp: Optional[float] = BPP, max_bytes: Optional[int] = MAX_BYTES,
    model: Optional[str] = ENCODER,
    tile: int = typer.Option(256, help="tile size in pixels (multiple of 64)"),
    meta: Optional[Path] = META, bands: Optional[str] = BANDS, scale: Optional[str] = SCALE,
    band_groups: Optional[str] = GROUPS, mask: bool = MASK,
    derive: bool = DERIVE, threads: int = THREADS, quiet: bool = QUIET,
    jobs: int = MANY["jobs"], scheduler: Optional[str] = MANY["scheduler"],
) -> None:
    """Compress an image "on the satellite": tiles -> lightweight encoder -> rANS -> .cosmic; or
    many (a folder or quoted glob) into a folder, one .cosmic file each.

    GeoTIFFs are read one tile window at a time (memory does not grow with the scene) and their
    CRS, transform and nodata travel in the file."""
    from cosmic.pipelines.encode_job import EncodeRequest, encode_file

    request = EncodeRequest.parse(input, output, model, quality, bpp, max_bytes, tile, bands, scale, band_groups,
                                  mask, derive, meta, progress=not quiet)
    if _is_many(str(input), output, jobs, scheduler):
        return _compress_many(dict(locals()), request)
    set_threads(threads)
    check_output(output, input)
    if output.suffix.lower() != ".cosmic":
        raise InputError(f"{output}: a compressed file is named NAME.cosmic")
    result = encode_file(request)
    for n in result.notes:
        note(n)
    if not quiet:
        _echo_encoded(output, result.coded)


def _echo_encoded(output: Path, coded) -> None:
    from cosmic.io.container import source_bits

    h = coded.header
    q = f", quality {h.quality:g}" if h.quality is not None else ""
    typer.echo(f"{output}: {coded.size} bytes, {coded.bpp:.4f} bpp, ratio "
               f"{h.width * h.height * h.channels * source_bits(h) / 8 / coded.size:.1f}:1 against "
               f"{h.channels} x {source_bits(h)}-bit samples, {h.rows}x{h.cols} tiles, "
               f"{h.width}x{h.height} px{q}, encoded in {coded.seconds:.2f} s")



@app.command()
def decompress(
    input: str = typer.Argument(..., help="a .cosmic file, or a folder or quoted glob ('in/*.cosmic') of them"),
    output: Path = typer.Option(..., "-o", "--output",
                                help="image to write (.png, or .tif: a GeoTIFF); a folder for many inputs"),
    model: Optional[str] = typer.Option(
        None, "--model", "-m", help="model directory or shipped name (default: the shipped model named in the file)"),
    steps: int = typer.Option(
        0, help="DDIM steps of diffusion compensation (opt-in; default 0: none, the better decode today)"),
    seed: int = typer.Option(0, help="seed of the diffusion sampler (same seed, same image)"),
    conceal: bool = typer.Option(
        False, help="decode the intact tiles of a damaged file and fill the bad ones, instead of failing"),
    deblock: bool = typer.Option(True, help="smooth tile borders after stitching (default: no bits, seams 2-4x lower)"),
    fmt: Optional[str] = typer.Option(
        None, "--format", help="png, tiff or jpeg (jpeg only explicitly, with --jpeg-quality: a second lossy step)"),
    jpeg_quality: Optional[int] = typer.Option(None, help="JPEG quality 1..95 of a --format jpeg output"),
    dtype: Optional[str] = PRODUCT["dtype"], co: Optional[list[str]] = PRODUCT["co"],
    prior: Optional[str] = PRIOR, fidelity: Optional[float] = FIDELITY,
    enhance: bool = PRODUCT["enhance"], enhance_steps: int = PRODUCT["enhance_steps"],
    threads: int = THREADS, quiet: bool = QUIET, device: str = DEVICE, precision: str = PRECISION,
    jobs: int = MANY["jobs"], scheduler: Optional[str] = MANY["scheduler"],
    window: Optional[str] = REGION["window"], bbox: Optional[str] = REGION["bbox"], reduce: int = REGION["reduce"],
) -> None:
    """Decompress a .cosmic file "on the ground" to an image, or many files into a folder.

    A .tif output is a Cloud-Optimized GeoTIFF with overviews, written one tile row at a time
    (memory does not grow with the scene): the georeferencing, the source's sample type (the
    stretch inverted), the fill as nodata, every coded band in order, band names and sensor tags.
    Many files: one line per file, failures reported and skipped, exit status non-zero at the end
    if any failed."""
    from cosmic.utils.device import check_precision, resolve_device

    if steps < 0:
        raise InputError(f"--steps {steps}: must be 0 or more")
    check_precision(precision, resolve_device(device))
    if enhance and (prior or dtype or co or fmt == "jpeg"):
        raise InputError("--enhance writes the enhanced picture as the plain decode is: not with --prior, --dtype, --co or --format jpeg")
    _check_region(window, bbox, reduce, enhance, _is_many(input, output, jobs, scheduler))
    request = _decode_request(dict(locals()))
    if _is_many(input, output, jobs, scheduler):
        return _decompress_many(dict(locals()), request)
    _decompress_one(dict(locals()), request)


def _check_region(window: Optional[str], bbox: Optional[str], reduce: int, enhance: bool, many: bool) -> None:
    """--window / --bbox / --reduce: one file, not with --enhance, one of --window and --bbox."""
    from cosmic.pipelines.region import check_reduce

    check_reduce(reduce)
    if not (window or bbox or reduce):
        return
    if window and bbox:
        raise InputError("--window and --bbox both choose the region: give one")
    if many or enhance:
        raise InputError("--window, --bbox and --reduce decode one file, without --enhance")


def _decode_request(o: dict):
    """`decompress`'s options as a :class:`~cosmic.pipelines.decode_job.DecodeRequest`."""
    from cosmic.io.raster import parse_creation_options
    from cosmic.pipelines.decode_job import FOR_MODEL, DecodeRequest
    from cosmic.pipelines.region import parse_bbox, parse_window

    post = FOR_MODEL if o["enhance"] else _prior_name(o["prior"], o["fidelity"])
    return DecodeRequest(
        Path(o["input"]), o["output"], o["model"], o["steps"], o["seed"], o["conceal"], o["deblock"], o["fmt"],
        o["jpeg_quality"], o["device"], o["precision"], o["dtype"], tuple(parse_creation_options(o["co"]).items()),
        post, o["fidelity"], o["enhance_steps"] if o["enhance"] else 0,
        window=parse_window(o["window"]) if o["window"] else None, bbox=parse_bbox(o["bbox"]) if o["bbox"] else None,
        reduce=o["reduce"], progress=not o["quiet"])


def _decompress_one(o: dict, request) -> None:
    """`cosmic decompress FILE -o IMAGE`."""
    from cosmic.pipelines.decode_job import decode_file

    set_threads(o["threads"])
    check_output(request.output, request.source)
    result = decode_file(request)
    for err in result.bad_tiles:
        typer.echo(f"warning: {clean(err)} - concealed", err=True)
    if request.output.suffix.lower() not in (".tif", ".tiff"):
        _picture_note(request.output, result.container)
    if not o["quiet"]:
        _echo_decoded(request.output, result.container, result.seconds)


def _picture_note(output: Path, container) -> None:
    """A PNG / JPEG holds the 8-bit picture (and a PNG the fill as alpha): a note names what the
    file carries that it leaves out, and that a .tif keeps it, so nothing is dropped unsaid."""
    h = container.header
    georef = h.georef or {}
    src = georef.get("source") or {}
    carried = (("georeferencing", georef.get("crs") or georef.get("transform")),
               ("the source's units (its stretch)", src.get("scale")), ("band names", any(src.get("descriptions") or [])),
               ("sensor metadata", h.metadata), ("GDAL tags", src.get("tags") or any(src.get("band_tags") or [])))
    left_out = [name for name, present in carried if present]
    if left_out:
        note(f"{output.name} holds the 8-bit picture without {', '.join(left_out)}: write .tif to keep them")


def _echo_decoded(output: Path, container, seconds: float) -> None:
    from cosmic.pipelines.region import output_size

    width, height = output_size(container)
    typer.echo(f"{output}: {width}x{height} px from {container.file_size} bytes "
               f"({container.bpp:.4f} bpp), decoded in {seconds:.2f} s")


def _prior_name(name: Optional[str], fidelity: Optional[float]) -> Optional[str]:
    """The prior ``--prior`` names ("codebook": the shipped one; None without it); ``--fidelity`` checked."""
    from cosmic.codebook.prior import DEFAULT_PRIOR, check_fidelity

    check_fidelity(fidelity)
    if name is None and fidelity is not None:
        raise InputError("--fidelity goes with --prior (e.g. --prior codebook)")
    return DEFAULT_PRIOR if name == "codebook" else name


@app.command()
def enhance(
    input: Path = typer.Argument(..., help="a JPEG2000 file (.jp2, .j2k) or a JPEG2000 GeoTIFF product (.tif, with --bpp)"),
    output: Path = typer.Option(..., "-o", "--output", help="image to write (.png, or .tif: a GeoTIFF)"),
    steps: int = typer.Option(0, help="DDIM steps of the prior LDM (0: the deterministic prior, w/o LDM)"),
    seed: int = typer.Option(0, help="seed of the LDM sampler (same seed, same image)"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="enhancer directory or shipped name"),
    bpp: Optional[float] = typer.Option(None, help="the rate the file was coded at (default: read from the codestream)"),
    bands: Optional[str] = BANDS, scale: Optional[str] = SCALE, threads: int = THREADS, quiet: bool = QUIET,
    fmt: Optional[str] = typer.Option(None, "--format", help="png or tiff (default: by the output's suffix; "
                                                           "png for many inputs)"),
    prior: Optional[str] = PRIOR, fidelity: Optional[float] = FIDELITY,
    jobs: int = MANY["jobs"], scheduler: Optional[str] = MANY["scheduler"],
) -> None:
    """Enhance a JPEG2000 decode on the ground with LDM-RSIC, or with the Code-RSIC codebook prior
    (--prior codebook) (tiled; a .tif output keeps the georeferencing); or many (a folder or quoted
    glob) into a folder."""
    from cosmic.io.jpeg2000 import check_enhance_input

    if prior and model:
        raise InputError("--model names an LDM-RSIC enhancer: not with --prior")
    if _is_many(str(input), output, jobs, scheduler):
        return _enhance_many(dict(locals()))
    check_output(output, input)
    check_enhance_input(input)  # before torch or a model loads (a PNG was refused only after 7.5 s)
    from cosmic.pipelines.decode import output_format
    from cosmic.pipelines.enhance_job import enhance_file

    set_threads(threads)
    output_format(output, fmt)
    done = enhance_file(_enhance_request(dict(locals())))
    for n in done.notes:
        note(n)
    if not quiet:
        rate = "" if done.bpp is None else f"{done.bpp:.4f} bpp input, "
        how = f"prior {prior}" if prior else f"steps {steps}"
        what = "enhanced" if done.enhanced else "written as decoded"
        typer.echo(f"{output}: {done.width}x{done.height} px {what} ({rate}{how}) in {done.seconds:.2f} s")


def _enhance_request(o: dict):
    """`enhance`'s options as an :class:`~cosmic.pipelines.enhance_job.EnhanceRequest`."""
    from cosmic.io.raster import parse_bands, parse_scale
    from cosmic.pipelines.enhance_job import EnhanceRequest

    bands = parse_bands(o["bands"])
    return EnhanceRequest(Path(o["input"]), o["output"], o["model"], o["steps"], o["seed"], o["bpp"],
                          None if bands is None else tuple(bands), parse_scale(o["scale"]),
                          _prior_name(o["prior"], o["fidelity"]), o["fidelity"])


def _is_many(input: str, output: Path, jobs: int, scheduler: Optional[str]) -> bool:
    """Whether a command works on many inputs: a folder or glob, an output folder, or workers asked
    for. A file that exists is one input even if its name has glob characters (``scene[1].cosmic``)."""
    glob = not Path(input).is_file() and any(c in input for c in "*?[")
    return Path(input).is_dir() or glob or output.is_dir() or jobs > 1 or bool(scheduler)


def _run_many(job, o: dict, inputs: list, suffix: str, request, done: str) -> None:
    """Run ``job`` on every input into the folder ``-o`` (cosmic.pipelines.batch): one line per
    file as it finishes, a closing count; exit status that of the worst failure, if any."""
    from cosmic.pipelines.batch import plan, run_batch, summary_line

    outdir = o["output"]
    if o["jobs"] < 1:
        raise InputError(f"--jobs {o['jobs']}: must be 1 or more")
    if outdir.exists() and not outdir.is_dir():
        raise InputError(f"{outdir}: many inputs are written into a folder, and this is a file")
    pairs = plan(inputs, outdir, suffix)
    outdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    echo = (lambda r: typer.echo(clean(r.line()), err=not r.ok)) if not o["quiet"] else (
        lambda r: r.ok or typer.echo(clean(r.line()), err=True))
    results = run_batch(job, pairs, request, o["jobs"], o["scheduler"], o["threads"], echo)
    line, rc = summary_line(results, time.perf_counter() - t0, done)
    typer.echo(line, err=bool(rc))
    if rc:
        raise typer.Exit(rc)


def _compress_many(o: dict, request) -> None:
    """`cosmic compress DIR_OR_GLOB -o OUTDIR`: one OUTDIR/STEM.cosmic per image."""
    import dataclasses

    from cosmic.pipelines.batch import find_inputs
    from cosmic.pipelines.encode import check_rate_target
    from cosmic.pipelines.encode_job import IMAGE_INPUTS, encode_file

    if o["meta"] is not None:
        raise InputError("--meta is one image's metadata; with many inputs each image's NAME.json beside it is read")
    check_rate_target(o["quality"], o["bpp"], o["max_bytes"])
    inputs = find_inputs(o["input"], IMAGE_INPUTS, "image (.png, .jpg, .tif)")
    _run_many(encode_file, o, inputs, ".cosmic", dataclasses.replace(request, progress=False), "encoded")


def _decompress_many(o: dict, request) -> None:
    """`cosmic decompress DIR_OR_GLOB -o OUTDIR`: one OUTDIR/STEM.png (.tif, .jpg) per .cosmic file."""
    import dataclasses

    from cosmic.pipelines.batch import IMAGE_SUFFIX, find_inputs
    from cosmic.pipelines.decode import output_format
    from cosmic.pipelines.decode_job import decode_file

    fmt = o["fmt"] or "png"
    output_format(Path("x" + IMAGE_SUFFIX.get(fmt, f".{fmt}")), o["fmt"], o["jpeg_quality"])
    if fmt != "tiff" and (o["dtype"] not in (None, "uint8") or o["co"]):
        raise InputError("--dtype and --co are written to GeoTIFFs: add --format tiff")
    request = dataclasses.replace(request, fmt=fmt, progress=False)
    _run_many(decode_file, o, find_inputs(o["input"]), IMAGE_SUFFIX[fmt], request, "decoded")


def _enhance_many(o: dict) -> None:
    """`cosmic enhance DIR_OR_GLOB -o OUTDIR`: one OUTDIR/STEM.png (.tif) per JPEG2000 file."""
    from cosmic.pipelines.batch import IMAGE_SUFFIX, find_inputs
    from cosmic.pipelines.enhance_job import enhance_file, enhance_inputs

    fmt = o["fmt"] or "png"
    if fmt not in ("png", "tiff"):
        raise InputError(f"--format {fmt}: choose png or tiff")
    if o["steps"] < 0:
        raise InputError(f"--steps {o['steps']}: must be 0 or more")
    request = _enhance_request(o)
    inputs = find_inputs(o["input"], enhance_inputs(o["bpp"], request.prior), "JPEG2000 (.jp2, .j2k)")
    _run_many(enhance_file, o, inputs, IMAGE_SUFFIX[fmt], request, "enhanced")
