"""``cosmic train ...``: the trainers' commands (their options are the trainers' config fields)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cosmic.cli.app import set_threads, train_app
from cosmic.cli.fields import config_command, config_values
from cosmic.errors import InputError
from cosmic.io.limits import check_tile


@train_app.command("classifier")
def train_classifier_cmd(
    data: Path = typer.Option(..., help="folder of class sub-folders (SPLITS.json honoured), e.g. UC Merced"),
    out: Path = typer.Option(Path("runs/classifier"), help="model directory to write"),
    steps: int = typer.Option(1500),
    batch_size: int = typer.Option(32),
    threads: int = typer.Option(0),
) -> None:
    """Train the scene classifier used for downstream accuracy and FD-UCM in `cosmic eval`."""
    from cosmic.training.classifier import train_classifier

    set_threads(threads)
    if not data.is_dir():
        raise InputError(f"--data {data}: not a directory")
    path, acc = train_classifier(data, out, steps=steps, batch_size=batch_size)
    typer.echo(f"{path}: top-1 accuracy on the val split {acc:.3f}")


#: options of `cosmic train stage1 / stage2` that are not config fields
_RUN = {
    "config": (Optional[Path], typer.Option(None, rich_help_panel="Run", help="a run.yaml / run.json of these options (keys with _); flags "
                                                        "given here override it; OUT/stage*_config.json of a run reads back")),
    "resume": (bool, typer.Option(True, rich_help_panel="Run", help="resume from OUT/last if present")),
}


def _panels(config_class) -> dict[str, str]:
    """Help panels: the data fields, the run's control (what a resumed run may change), the recipe."""
    import dataclasses

    from cosmic.training.config import RUN_CONTROL, CropSource

    data = {f.name for f in dataclasses.fields(CropSource)} | {"stage1"}
    return {f.name: "Data" if f.name in data else "Run" if f.name in RUN_CONTROL else "Recipe"
            for f in dataclasses.fields(config_class)}


def _stage1_options():
    from cosmic.training.config import STAGE1_HELP, Stage1Config

    return config_command(Stage1Config, STAGE1_HELP, flags={"ground_only": ("--ground-only",)},
                          defaults={"out": "runs/stage1"}, extra=_RUN, panels=_panels(Stage1Config))


def _stage2_options():
    from cosmic.training.config import STAGE2_HELP, Stage2Config

    return config_command(Stage2Config, STAGE2_HELP, flags={"use_metadata": ("--use-metadata/--no-metadata",)},
                          defaults={"out": "runs/stage2"}, extra=_RUN, panels=_panels(Stage2Config))


@train_app.command("stage1")
@_stage1_options()
def train_stage1_cmd(ctx: typer.Context, **options) -> None:
    """Stage 1: train E, hyperprior, Ẽ, ẑ0 and D with L = R + λ·255²·MSE (+ aux, + β·KL).
    Several GPUs: torchrun --nproc-per-node N -m cosmic.cli train stage1 ..."""
    from cosmic.training.stage1 import train_stage1

    final = train_stage1(_stage1_config(ctx, options), resume=options["resume"])
    typer.echo(f"final model: {final}")


def _stage1_config(ctx: typer.Context, options: dict):
    """Stage1Config from the options of `cosmic train stage1`, checked (one-line InputErrors)."""
    from cosmic.models.registry import MODELS
    from cosmic.training.stage1 import Stage1Config

    o = config_values(Stage1Config, ctx, options)
    check_tile(o["crop"], "--crop")
    if not 0.0 <= o["est_weight"] <= 1.0:
        raise InputError(f"--est-weight {o['est_weight']}: must be in [0, 1]")
    if o["arch"] not in MODELS:
        raise InputError(f"--arch {o['arch']}: unknown; choose one of {', '.join(MODELS)}")
    return Stage1Config(**o)


def _path_texts(paths: Optional[list[Path]]) -> Optional[list[str]]:
    """``--extra-data`` paths as the text a training config stores (None when none are given)."""
    return [str(p) for p in paths] if paths else None


@train_app.command("stage2")
@_stage2_options()
def train_stage2_cmd(ctx: typer.Context, **options) -> None:
    """Stage 2: train the noise predictor ε_θ(z_t, t, y_hat, metadata) on frozen stage 1 (Eq. 5)."""
    from cosmic.training.stage2 import Stage2Config, train_stage2

    o = config_values(Stage2Config, ctx, options)
    if not o.get("stage1"):
        raise InputError("--stage1: give the frozen stage-1 model (or a --config file with 'stage1')")
    check_tile(o["crop"], "--crop")
    final = train_stage2(Stage2Config(**o), resume=options["resume"])
    typer.echo(f"diffusion model: {final} (copy it to MODEL_DIR/diffusion to use it)")


def _codebook_options():
    from cosmic.training.config import CODEBOOK_HELP, CodebookConfig

    return config_command(CodebookConfig, CODEBOOK_HELP, skip=("bands",), defaults={"out": "runs/codebook"},
                          extra={**_RUN, "resume": (bool, typer.Option(True, rich_help_panel="Run", help=(
                              "continue from OUT/stageN/last if present")))}, panels=_panels(CodebookConfig))


@train_app.command("codebook")
@_codebook_options()
def train_codebook_cmd(ctx: typer.Context, **options) -> None:
    """Train the Code-RSIC codebook prior (cosmic.codebook), one stage at a time."""
    from cosmic.training.codebook import CodebookConfig, train_codebook

    o = config_values(CodebookConfig, ctx, options, folder=True)
    if o.get("stage") is None:
        raise InputError("--stage: choose 1, 2 or 3 (or a --config file with 'stage')")
    check_tile(o["crop"], "--crop", 8)
    typer.echo(f"codebook prior: {train_codebook(CodebookConfig(**o), resume=options['resume'])}")


def _enhance_options():
    from cosmic.training.config import ENHANCE_HELP, EnhanceConfig

    max_bpp = (float, typer.Option(0.5, help="JPEG2000 training rates: log-uniform over 0.05..MAX_BPP"))
    return config_command(EnhanceConfig, ENHANCE_HELP, skip=("bpp_range",),
                          defaults={"out": "runs/enhance"}, extra={"max_bpp": max_bpp})


@train_app.command("enhance")
@_enhance_options()
def train_enhance_cmd(ctx: typer.Context, **options) -> None:
    """LDM-RSIC: train an enhancer of JPEG2000 or COSMIC decodes (stage I, prior regressor, stage
    II); resumes from OUT."""
    from cosmic.training.ldm_rsic import EnhanceConfig, train_enhancer

    o = config_values(EnhanceConfig, ctx, options, folder=True)
    check_tile(o["crop"], "--crop", 8)
    if not 0.05 < options["max_bpp"] <= 8:
        raise InputError("--crop: a positive multiple of 8; --max-bpp: over 0.05, at most 8")
    cfg = EnhanceConfig(**o, bpp_range=(0.05, options["max_bpp"]))
    typer.echo(f"enhancer: {train_enhancer(cfg)}")
