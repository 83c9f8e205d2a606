"""``cosmic demo``, ``cosmic compare``, ``cosmic eval``, ``cosmic export onnx`` and ``cosmic data tiles``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cosmic.cli.app import (ARGV, DEFAULT_MODEL_NAME, app, check_output, data_app, export_app, int_list, note,
                            set_threads)
from cosmic.cli.options import DEVICE, PRECISION
from cosmic.errors import InputError
from cosmic.io.limits import check_tile


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-output"), help="folder for the bitstream, images and report"),
    image: Optional[Path] = typer.Option(None, help="image to use instead of the bundled NAIP sample"),
    model: str = typer.Option(DEFAULT_MODEL_NAME, "--model", "-m"),
    steps: int = typer.Option(0, help="also decode with diffusion compensation, N DDIM steps (opt-in; needs stage 2)"),
    seed: int = typer.Option(0),
    threads: int = typer.Option(0),
) -> None:
    """The main job: compress a real scene on the satellite, decode it on the ground, compare."""
    from cosmic.data import sample_path
    from cosmic.demo import run_demo

    set_threads(threads)
    if image is not None and not image.exists():
        raise InputError(f"{image}: no such file")
    out.mkdir(parents=True, exist_ok=True)
    run_demo(image or sample_path(), out, model, echo=typer.echo, steps=steps, seed=seed)


@app.command("compare")
def compare_cmd(
    data: Path = typer.Option(..., help="folder of images (SPLITS.json honoured)"),
    split: str = typer.Option("val", help="train, val or all"),
    out: Path = typer.Option(Path("results/compare"), help="folder for per_image.json and summary.md"),
    model: str = typer.Option(DEFAULT_MODEL_NAME, "--model", "-m"),
    limit: int = typer.Option(0, help="use only the first N images (0: all)"),
    steps: int = typer.Option(0, help="also decode with diffusion compensation, N DDIM steps (0: no)"),
    gsd: Optional[float] = typer.Option(None, help="GSD in metres known for the whole dataset"),
    threads: int = typer.Option(0),
) -> None:
    """COSMIC vs JPEG2000 at the same measured bpp, per image, from real files (images where the
    JPEG2000 rate search misses COSMIC's bpp by more than 5 % are flagged and left out of the means)."""
    from cosmic.evaluation.matched import compare_with_jpeg2000, write_report
    from cosmic.metadata import SensorMetadata
    from cosmic.io.images import split_files

    set_threads(threads)
    files = split_files(data, split)
    if limit:
        files = files[:limit]
    rows = compare_with_jpeg2000(model, files, out, steps=steps,
                                 default_metadata=SensorMetadata(gsd=gsd) if gsd else None)
    (out / "current.cosmic").unlink(missing_ok=True)
    summary = write_report(rows, out, f"COSMIC vs JPEG2000 on {data.name}/{split}")
    for name in summary["j2k_missed"]:
        note(f"{name}: the JPEG2000 rate search missed COSMIC's bpp by more than 5%; left out of the means")
    typer.echo((out / "summary.md").read_text())


@app.command("eval")
def eval_cmd(
    data: Path = typer.Option(..., help="folder of images (SPLITS.json honoured) or a tile set (manifest.json)"),
    codecs: str = typer.Option("cosmic,jpeg2000,jpeg,webp,avif,jpegxl", help="comma-separated codecs"),
    out: Path = typer.Option(Path("results/eval"), help="folder for the JSON, summary.md and plots"),
    split: str = typer.Option("val", help="train, val or all (folders with SPLITS.json)"),
    limit: int = typer.Option(0, help="use N images spread evenly over the set (0: all)"),
    steps: str = typer.Option("25", help="DDIM steps for cosmic-dc; a list (5,10,25,50) sweeps them"),
    seed: str = typer.Option(
        "0", help="diffusion sampler seed; a list (0,1,2,3,4) decodes with each and reports mean ± 2σ (Table 4)"),
    gsd: Optional[float] = typer.Option(None, help="GSD in metres known for the whole dataset"),
    title: Optional[str] = typer.Option(None, help="title of the report (default: the data folder)"),
    classifier: Optional[str] = typer.Option(
        "classifier-ucm", help="scene classifier (shipped name or directory) for top-1 and FD-UCM; 'none' to skip"),
    report_only: bool = typer.Option(
        False, help="rewrite summary.md, the per-codec JSON and plots from OUT/per_image.json (no coding)"),
    threads: int = typer.Option(0),
    stitch: bool = typer.Option(True, help="tile sets: also score the stitched scenes (stitched.md)"),
    device: str = DEVICE, precision: str = PRECISION,
) -> None:
    """Rate-distortion of several codecs from real encodings: JSON, markdown table, BD-rate, plots."""
    from cosmic.evaluation.harness import report_only_results, run_evaluation
    from cosmic.evaluation.specs import parse_codecs
    from cosmic.metadata import SensorMetadata
    from cosmic.utils.device import configured

    set_threads(threads)
    step_list, seed_list = _eval_lists(steps, seed)
    specs = parse_codecs(codecs, steps=step_list, seeds=seed_list)
    command = "cosmic " + " ".join(str(a) for a in ARGV)
    if report_only:
        reports = report_only_results(out, specs, title or data.name, command)
    else:
        for s_ in specs:
            if s_.note:
                note(f"{s_.name}: unavailable - {s_.note}")
        with configured(device, precision):  # the learned codecs' decode pipelines
            reports = run_evaluation(data, specs, out, split, limit, seed_list[0], title, command,
                                     SensorMetadata(gsd=gsd) if gsd else None, _load_classifier(classifier),
                                     classifier, stitch=stitch)
    for report in reports:
        typer.echo(report.read_text())


def _eval_lists(steps: str, seed: str) -> tuple[list[int], list[int]]:
    """``--steps`` and ``--seed`` of `cosmic eval` as checked lists."""
    step_list = int_list("--steps", steps, "25 or 5,10,25,50")
    if not step_list or min(step_list) < 1:
        raise InputError(f"--steps {steps!r}: step counts must be 1 or more")
    seed_list = int_list("--seed", seed, "0 or 0,1,2,3,4")
    if not seed_list or min(seed_list) < 0 or len(set(seed_list)) != len(seed_list):
        raise InputError(f"--seed {seed!r}: seeds must be distinct numbers, 0 or more")
    return step_list, seed_list


def _load_classifier(name: Optional[str]):
    """The scene classifier, or None for 'none' / a default that is not shipped."""
    if not name or name.lower() == "none":
        return None
    from cosmic.evaluation.classifier import SceneClassifier
    from cosmic.zoo import model_path, shipped_models

    if name == "classifier-ucm" and name not in shipped_models():
        note("no shipped scene classifier: top-1 and FD-UCM are skipped")
        return None
    return SceneClassifier.from_pretrained(model_path(name))



@export_app.command("onnx")
def export_onnx_cmd(
    model: str = typer.Argument(..., help="shipped model name or model directory"),
    output: Path = typer.Option(..., "-o", "--output", help="the .onnx file to write"),
    tile: int = typer.Option(256, help="tile size in pixels the graph takes (multiple of 64)"),
) -> None:
    """Export E + h_a (+ colour shortcut, colour transform, gain units) as ONNX: the network a
    satellite's embedded runtime runs; the rANS coding stays in CompressAI's coder."""
    from cosmic.onboard.export import export_onnx
    from cosmic.zoo import load_onboard

    check_tile(tile)
    check_output(output)
    codec, name = load_onboard(model)
    export_onnx(codec, output, tile)
    inputs = "x, quality" if codec.quality_range else "x"
    typer.echo(f"{output}: {name} on-board analysis ({inputs} -> y, z) for {tile}-px tiles, "
               f"{output.stat().st_size} bytes")


@data_app.command("tiles")
def data_tiles(
    scenes: list[Path] = typer.Option(
        ..., help="folder of scene images, or one image (repeatable); PNG preferred over originals"),
    out: Path = typer.Option(..., help="folder to write the tiles and manifest.json into"),
    tile: int = typer.Option(256, help="tile size in pixels"),
    metadata: bool = typer.Option(
        True, help="write each scene's sidecar metadata beside its tiles (a metadata-conditioned "
                   "decode uses it; coded files then carry it in their header, a few dozen bytes)"),
) -> None:
    """Cut scenes into whole TILE x TILE tiles with a manifest (the paper's tile test set)."""
    from cosmic.evaluation.tileset import build_tile_set

    check_tile(tile)
    m = build_tile_set(scenes, out, tile, progress=True, metadata=metadata)
    fill = sum(t["fill"] for t in m["tiles"])
    for s_ in m["scenes"]:
        typer.echo(f"{s_['name']}: {s_['width']}x{s_['height']} -> {s_['rows']}x{s_['cols']} tiles")
    typer.echo(f"{out / 'manifest.json'}: {len(m['tiles'])} tiles ({fill} all fill) from {len(m['scenes'])} scenes")


