"""``cosmic info``, ``cosmic flops`` and ``cosmic models``: what a file, a preset or the package holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from cosmic.cli.app import app, clean
from cosmic.errors import InputError
from cosmic.io.limits import check_tile


def _describe_georef(georef: dict | None) -> str:
    if not georef:
        return "(none)"
    parts = []
    crs = georef.get("crs")
    if crs:
        parts.append(crs if len(crs) < 40 else crs[:37] + "...")
    t = georef.get("transform")
    if t:
        parts.append(f"origin ({t[2]:.3f}, {t[5]:.3f}), pixel {abs(t[0]):g} x {abs(t[4]):g}")
    if georef.get("nodata") is not None:
        parts.append(f"nodata {georef['nodata']}")
    src = georef.get("source") or {}
    if src.get("bands"):
        names = [n for n in src.get("descriptions") or [] if n]
        parts.append(f"bands {','.join(map(str, src['bands']))} of {src.get('source_dtype')}"
                     + (f" ({','.join(names)})" if names else ""))
    if src.get("scale"):
        parts.append("scaled " + ", ".join(f"{lo:g}..{hi:g}" for lo, hi in src["scale"]))
    return "; ".join(parts)


def _image_line(c) -> str:
    """Size, bands, bits (coded and source), ratio against the source, groups and mask."""
    from cosmic.io.container import source_bits

    h, bits = c.header, source_bits(c.header)
    models = (h.layout or {}).get("models") or [None] * h.planes  # a group's own model, e.g. single-band
    groups = ":".join(",".join(map(str, g)) + (f" ({clean(m['model'])})" if m else "") for g, m in zip(h.groups, models))
    return (f"{h.width}x{h.height}, {h.channels} band(s) coded {h.bit_depth}-bit from {bits}-bit, ratio "
            f"{h.width * h.height * h.channels * bits / 8 / c.file_size:.1f}:1; groups "
            f"{groups}; mask {'yes' if h.has_mask else 'no'}")


def _bad_tiles(c) -> list[str]:
    """Every tile whose CRC fails, then every tile whose fill mask does not decode."""
    from cosmic.io.container import TileError

    bad = []
    for i in range(c.header.num_tiles):
        try:
            c.tile_payload(i)
            if i < c.header.grid_tiles:
                c.tile_mask(i)
        except TileError as err:
            bad.append(str(err))
    return bad


@app.command()
def info(
    input: Path = typer.Argument(..., help="a .cosmic file"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Show a .cosmic file's header and tile table (and check every tile's CRC and mask)."""
    from cosmic.io.container import read_container

    c = read_container(input)
    bad = _bad_tiles(c)
    if as_json:  # the report itself says which tiles are bad: exit 0
        return typer.echo(json.dumps(_info_dict(c, input, bad), indent=2))
    _echo_info(c, input, bad)
    if bad:
        raise typer.Exit(3)


def _info_dict(c, input: Path, bad: list[str]) -> dict:
    """`cosmic info --json`: the header, the tile sizes and the tiles that fail their checks."""
    from cosmic.io.container import source_bits

    h = c.header
    return {
        "file": str(input), "format_version": c.version, "bytes": c.file_size, "bpp": c.bpp,
        "model": h.model, "model_sha256": h.model_sha256, "width": h.width, "height": h.height,
        "channels": h.channels, "bit_depth": h.bit_depth, "tile": h.tile, "quality": h.quality,
        "grid": [h.rows, h.cols], "edge_stride": h.edge_stride, "tile_bytes": [length for length, _ in c.entries],
        "metadata": h.metadata, "georef": h.georef, "corrupt_tiles": bad,
        "groups": h.groups, "mask": h.has_mask, "source_bits": source_bits(h),
        "group_models": [c.plane(g).header.model for g in range(h.planes)],
    }


def _echo_info(c, input: Path, bad: list[str]) -> None:
    """`cosmic info`: one line per part of the file."""
    h, lengths = c.header, [length for length, _ in c.entries]
    typer.echo(f"{clean(input)}: COSMIC format v{c.version}, {c.file_size} bytes, {c.bpp:.4f} bpp")
    quality = f", quality {h.quality:g}" if h.quality is not None else ""
    typer.echo(f"  model     {clean(h.model)} (on-board sha256 {h.model_sha256[:16]}...){quality}")
    typer.echo(f"  image     {_image_line(c)}")
    edges = f" (edge tiles coded to a multiple of {h.edge_stride}px)" if h.edge_stride else ""
    typer.echo(f"  tiles     {h.rows}x{h.cols} of {h.tile}px{edges}, {min(lengths)}..{max(lengths)} bytes each")
    typer.echo(f"  metadata  {json.dumps(h.metadata) if h.metadata else '(none)'}")
    typer.echo(f"  georef    {clean(_describe_georef(h.georef))}")
    typer.echo(f"  integrity {'all tiles OK' if not bad else '; '.join(bad)}")


@app.command()
def flops(
    preset: str = typer.Option("paper", help="COSMIC preset to count (paper or small)"),
    size: int = typer.Option(256, help="image side in pixels"),
    baselines: bool = typer.Option(True, help="also count CompressAI's baselines"),
    onboard_channels: Optional[int] = typer.Option(None, help="count COSMIC with E this wide (default: the "
                                                              "preset's N; the hyperprior keeps N)"),
) -> None:
    """On-board MACs / FLOPs (E + h_a + h_s), with the variable-rate additions (YCbCr, colour
    shortcut, gain units), with them and each context model (checkerboard, channel-wise), without CAMs, and
    CompressAI's baselines at the same preset's widths (paper Table 1)."""
    from rich.console import Console
    from rich.table import Table

    from cosmic.flops import BASELINES, onboard_cost
    from cosmic.models.registry import PRESETS

    if preset not in PRESETS:
        raise InputError(f"--preset {preset}: choose one of {', '.join(PRESETS)}")
    check_tile(size, "--size")
    if onboard_channels is not None and (onboard_channels <= 0 or onboard_channels % 2):
        raise InputError(f"--onboard-channels {onboard_channels}: a positive even number")
    rows = [onboard_cost("cosmic", size, preset, **kw, onboard_channels=onboard_channels)
            for kw in ({}, {"variable_rate": True}, {"variable_rate": True, "context": "checkerboard"},
                       {"variable_rate": True, "context": "channel"}, {"cams": False})]
    if baselines:
        rows += [onboard_cost(b, size, preset) for b in BASELINES]
    ref = rows[0].macs
    table = Table(title=f"On-board cost at {size}x{size} (torch.utils.flop_counter)")
    for col in ("model", "GMACs", "GFLOPs", "params (M)", "x COSMIC"):
        table.add_column(col, justify="right" if col != "model" else "left")
    for r in rows:
        table.add_row(r.name, f"{r.macs / 1e9:.3f}", f"{r.flops / 1e9:.3f}", f"{r.params / 1e6:.2f}",
                      f"{r.macs / ref:.2f}")
    Console().print(table)



@app.command()
def models() -> None:
    """List the models shipped inside the package."""
    from cosmic.evaluation.classifier import SceneClassifier
    from cosmic.utils.pretrained import model_components
    from cosmic.zoo import has_compensator, read_model_config, shipped_models

    for name in shipped_models():
        cfg = read_model_config(name)
        if cfg.get("_class_name") == SceneClassifier.__name__:
            top1 = cfg.get("_extra", {}).get("val_top1")
            typer.echo(f"{name}: scene classifier for cosmic eval ({len(cfg.get('classes', []))} classes"
                       + (f", val top-1 {top1:.3f})" if top1 is not None else ")"))
            continue
        if cfg.get("_class_name") == "CodebookPrior":
            typer.echo(f"{name}: Code-RSIC codebook prior for --prior codebook (preset {cfg.get('preset')}, "
                       f"trained on {cfg.get('lq_model')} decodes)")
            continue
        if cfg.get("_class_name") == "Enhancer":
            typer.echo(f"{name}: LDM-RSIC enhancer of {cfg.get('source')} decodes ({', '.join(model_components(cfg))})")
            continue
        stage2 = " + stage 2" if has_compensator(name) else ""
        wide_e = f" E={cfg['onboard_channels']}" if cfg.get("onboard_channels") else ""
        typer.echo(f"{name}: N={cfg.get('N')}{wide_e} M={cfg.get('M')} ground={cfg.get('ground_channels')}{stage2}")


