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
    from cosmic.pipelines.batch_encode import EncodeOptions, encode_image

    options = EncodeOptions.parse(model, quality, bpp, max_bytes, tile, bands, scale, band_groups, mask, derive)
    if _is_many(str(input), output, jobs, scheduler):
        return _compress_many(dict(locals()), options)
    set_threads(threads)
    check_output(output, input)
    if output.suffix.lower() != ".cosmic":
        raise InputError(f"{output}: a compressed file is named NAME.cosmic")
    coded, notes = encode_image(input, output, options, meta=meta, progress=not quiet)
    for n in notes:
        note(n)
    if not quiet:
        _echo_encoded(output, coded)


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
    if _is_many(input, output, jobs, scheduler):
        return _decompress_many(dict(locals()))
    _decompress_one(dict(locals()))


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


def _region(o: dict, container):
    """The region of the file that `decompress` decodes (the file itself without --window, --bbox, --reduce)."""
    from cosmic.pipelines.region import open_region, parse_bbox, parse_window, window_from_bbox

    window = parse_window(o["window"]) if o["window"] else None
    if o["bbox"]:
        window = window_from_bbox(container.header, parse_bbox(o["bbox"]))
    return open_region(container, window, o["reduce"], deblock=o["deblock"])


def _decompress_one(o: dict) -> None:
    """`cosmic decompress FILE -o IMAGE`."""
    from cosmic.io.container import read_container
    from cosmic.io.raster import parse_creation_options
    from cosmic.pipelines.decode import DecodePipeline, output_format

    set_threads(o["threads"])
    input, output = Path(o["input"]), o["output"]
    check_output(output, input)
    fmt = output_format(output, o["fmt"], o["jpeg_quality"])
    container = _region(o, read_container(input, partial=o["conceal"]))  # --conceal: a cut-off file keeps its whole tiles
    pipe = DecodePipeline.for_container(container, o["model"], device=o["device"], precision=o["precision"])
    t0 = time.perf_counter()
    decode = {k: o[k] for k in ("steps", "seed", "conceal", "deblock")} | {"progress": not o["quiet"]}
    if o["enhance"]:
        from cosmic.enhance.pipeline import enhance_decode

        bad = enhance_decode(pipe, container, output, None, o["enhance_steps"], **decode)
    else:
        bad = pipe.write(container, output, fmt, o["jpeg_quality"], o["dtype"], parse_creation_options(o["co"]),
                         prior=_load_prior(o["prior"], o["fidelity"]), fidelity=o["fidelity"], **decode)
    for err in bad:
        typer.echo(f"warning: {clean(err)} - concealed", err=True)
    if fmt != "tiff":
        _picture_note(output, container)
    if not o["quiet"]:
        _echo_decoded(output, container, time.perf_counter() - t0)


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


def _load_prior(name: Optional[str], fidelity: Optional[float]):
    """The decoder-side prior of ``--prior`` (None without it); ``--fidelity`` checked."""
    from cosmic.codebook.prior import load_prior

    name = _prior_name(name, fidelity)
    return None if name is None else load_prior(name)


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
    from cosmic.enhance.codestream import check_enhance_input

    if prior and model:
        raise InputError("--model names an LDM-RSIC enhancer: not with --prior")
    if _is_many(str(input), output, jobs, scheduler):
        return _enhance_many(dict(locals()))
    check_output(output, input)
    check_enhance_input(input)  # before torch or a model loads (a PNG was refused only after 7.5 s)
    from cosmic.io.raster import parse_bands, parse_scale
    from cosmic.pipelines.decode import output_format

    set_threads(threads)
    output_format(output, fmt)
    pipe = _enhance_pipeline(model, prior, fidelity)
    done = pipe.enhance_file(input, output, steps, seed, bpp, parse_bands(bands), parse_scale(scale))
    for n in done.notes:
        note(n)
    if not quiet:
        rate = "" if done.bpp is None else f"{done.bpp:.4f} bpp input, "
        how = f"prior {prior}" if prior else f"steps {steps}"
        what = "enhanced" if done.enhanced else "written as decoded"
        typer.echo(f"{output}: {done.width}x{done.height} px {what} ({rate}{how}) in {done.seconds:.2f} s")


def _enhance_pipeline(model: Optional[str], prior: Optional[str], fidelity: Optional[float]):
    """`cosmic enhance`'s pipeline: the JPEG2000 enhancer, or the ``--prior`` in its place."""
    from cosmic.enhance.pipeline import EnhancePipeline, PriorPipeline

    if prior:
        return PriorPipeline(_load_prior(prior, fidelity), fidelity)
    _prior_name(prior, fidelity)  # --fidelity alone is refused
    return EnhancePipeline.for_source("jpeg2000", model)


def _is_many(input: str, output: Path, jobs: int, scheduler: Optional[str]) -> bool:
    """Whether a command works on many inputs: a folder or glob, an output folder, or workers asked
    for. A file that exists is one input even if its name has glob characters (``scene[1].cosmic``)."""
    glob = not Path(input).is_file() and any(c in input for c in "*?[")
    return Path(input).is_dir() or glob or output.is_dir() or jobs > 1 or bool(scheduler)


def _run_many(job, o: dict, inputs: list, suffix: str, options, done: str) -> None:
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
    results = run_batch(job, pairs, options, o["jobs"], o["scheduler"], o["threads"], echo)
    line, rc = summary_line(results, time.perf_counter() - t0, done)
    typer.echo(line, err=bool(rc))
    if rc:
        raise typer.Exit(rc)


def _compress_many(o: dict, options) -> None:
    """`cosmic compress DIR_OR_GLOB -o OUTDIR`: one OUTDIR/STEM.cosmic per image."""
    from cosmic.pipelines.batch import find_inputs
    from cosmic.pipelines.batch_encode import IMAGE_INPUTS, encode_file
    from cosmic.pipelines.encode import check_rate_target

    if o["meta"] is not None:
        raise InputError("--meta is one image's metadata; with many inputs each image's NAME.json beside it is read")
    check_rate_target(o["quality"], o["bpp"], o["max_bytes"])
    inputs = find_inputs(o["input"], IMAGE_INPUTS, "image (.png, .jpg, .tif)")
    _run_many(encode_file, o, inputs, ".cosmic", options, "encoded")


def _decompress_many(o: dict) -> None:
    """`cosmic decompress DIR_OR_GLOB -o OUTDIR`: one OUTDIR/STEM.png (.tif, .jpg) per .cosmic file."""
    from cosmic.io.raster import parse_creation_options
    from cosmic.pipelines.batch import IMAGE_SUFFIX, find_inputs
    from cosmic.pipelines.batch_decode import DecodeOptions, decode_file
    from cosmic.pipelines.decode import output_format

    fmt = o["fmt"] or "png"
    output_format(Path("x" + IMAGE_SUFFIX.get(fmt, f".{fmt}")), o["fmt"], o["jpeg_quality"])
    if fmt != "tiff" and (o["dtype"] not in (None, "uint8") or o["co"]):
        raise InputError("--dtype and --co are written to GeoTIFFs: add --format tiff")
    options = DecodeOptions(o["model"], o["steps"], o["seed"], o["conceal"], o["deblock"], fmt, o["jpeg_quality"],
                            o["device"], o["precision"], o["dtype"], tuple(parse_creation_options(o["co"]).items()),
                            _prior_name(o["prior"], o["fidelity"]), o["fidelity"], o["enhance"], o["enhance_steps"])
    _run_many(decode_file, o, find_inputs(o["input"]), IMAGE_SUFFIX[fmt], options, "decoded")


def _enhance_many(o: dict) -> None:
    """`cosmic enhance DIR_OR_GLOB -o OUTDIR`: one OUTDIR/STEM.png (.tif) per JPEG2000 file."""
    from cosmic.io.raster import parse_bands, parse_scale
    from cosmic.pipelines.batch import IMAGE_SUFFIX, find_inputs
    from cosmic.pipelines.batch_enhance import EnhanceOptions, enhance_file, enhance_inputs

    fmt = o["fmt"] or "png"
    if fmt not in ("png", "tiff"):
        raise InputError(f"--format {fmt}: choose png or tiff")
    if o["steps"] < 0:
        raise InputError(f"--steps {o['steps']}: must be 0 or more")
    bands = parse_bands(o["bands"])
    options = EnhanceOptions(o["model"], o["steps"], o["seed"], o["bpp"], None if bands is None else tuple(bands),
                             parse_scale(o["scale"]), _prior_name(o["prior"], o["fidelity"]), o["fidelity"])
    inputs = find_inputs(o["input"], enhance_inputs(o["bpp"], options.prior), "JPEG2000 (.jp2, .j2k)")
    _run_many(enhance_file, o, inputs, IMAGE_SUFFIX[fmt], options, "enhanced")


