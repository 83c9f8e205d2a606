"""``cosmic train ...``: the trainers' commands (their options are the trainers' config fields)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cosmic.cli.app import float_list, int_list, set_threads, train_app
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


#: the options of `cosmic train stage1` (their names are Stage1Config's fields)
_STAGE1 = dict(
    data=typer.Option(None, help="folder of PNG/JPEG/TIFF images (SPLITS.json honoured), or of .tar shards "
                                 "with --stream; required unless the --config file gives it"),
    out=typer.Option(Path("runs/stage1"), help="run directory (checkpoints, final model)"),
    preset=typer.Option("small", help="paper or small"),
    arch=typer.Option("cosmic", help="cosmic, or a CompressAI baseline trained the same way: "
                                     "bmshj2018-hyperprior, mbt2018-mean"),
    lmbda=typer.Option(0.0026, help="rate-distortion trade-off λ (paper: 0.00067..0.005)"),
    kl_weight=typer.Option(0.5, help="weight of the z0 KL term, in bpp units"),
    est_weight=typer.Option(0.5, help="share of the distortion term given to the no-compensation (ẑ0) path, 0..1"),
    chroma_weight=typer.Option(
        0.0, help="extra weight on the ẑ0 path's block-averaged colour error (makes y_hat carry colour)"),
    colour_shortcut=typer.Option(
        False, help="add the colour shortcut to E (block-mean colour into y; zero-initialised, so "
                    "--init-from a model without it starts where that model was)"),
    cams=typer.Option(True, help="--no-cams: E without its CAMs (the paper's w/o CAM ablation)"),
    crop=typer.Option(128, help="random crop size (multiple of 64)"),
    bf16=typer.Option(False, help="bf16 autocast (slower on CPUs without AMX)"),
    resume=typer.Option(True, help="resume from OUT/last if present"),
    name=typer.Option(None, help="model name written into bitstreams"),
    init_from=typer.Option(None, help="start from this model's weights (new λ)"),
    extra_data=typer.Option(None, help="images or folders (e.g. large scenes) whose random crops join the training set"),
    split=typer.Option("train", help="SPLITS.json lists to train on, joined by '+'"),
    rate_lambdas=typer.Option(
        None, help="variable rate: comma-separated ascending λs of qualities 1..K (one model codes them all)"),
    colour_space=typer.Option("rgb", help="rgb or ycbcr (the colour space E codes)"),
    ground_channels=typer.Option(None, help="width of the ground decoder (default: the preset's)"),
    onboard_channels=typer.Option(None, help="width of the on-board encoder E (default: the preset's N; the "
                                             "hyperprior keeps N); with --init-from widens it exactly"),
    lr_schedule=typer.Option("step", help="step (10x drop at --lr-drop-at) or cosine (to --final-lr)"),
    lr_drop_at=typer.Option(0.85, help="fraction of --steps where the decay starts"),
    final_lr=typer.Option(0.02, help="cosine: last lr as a fraction of --lr"),
    warmup_steps=typer.Option(0, help="linear lr warm-up steps"),
    ema_decay=typer.Option(0.0, help="keep (and ship) an EMA of the weights, e.g. 0.999"),
    gain_lr_scale=typer.Option(1.0, help="variable rate: the gain units' lr as a multiple of --lr (e.g. 10 "
                                         "when --init-from a model and widening --rate-lambdas)"),
    val_images=typer.Option(42, help="validation images (a fixed spread-out subset of val)"),
    device=typer.Option("auto", help="auto, cpu, cuda or cuda:N (under torchrun: each process's GPU; "
                                     "validation codes on the CPU)"),
    max_minutes=typer.Option(None, help="checkpoint and stop after this much wall time"),
    pause_at=typer.Option(None, help="checkpoint and stop at this step (resume later)"),
    start_step=typer.Option(0, help="with --init-from: continue a campaign's schedule from this step"),
    bands=typer.Option(3, help="1: a single-band model trained on one band of each crop (R, G, B or luminance); "
                               "--init-from an RGB model converts it exactly"),
    ground_only=typer.Option(False, "--ground-only", help="with --init-from: train the ground decoder only "
                             "(bitstreams unchanged; --ground-channels may widen it)"),
)
#: options both trainers share (their names are Stage1Config's and Stage2Config's fields)
_TRAIN = dict(
    config=typer.Option(None, help="a run.yaml / run.json of these options (keys with _); flags given "
                                   "here override it; OUT/stage*_config.json of a run reads back"),
    precision=typer.Option("fp32", help="fp32, bf16 or fp16 (CUDA) autocast of the network's forward pass"),
    workers=typer.Option(0, help="DataLoader worker processes reading and cropping images"),
    stream=typer.Option(False, help="read images from disk as needed (any dataset size) instead of holding "
                                    "them in memory; a folder of .tar shards is streamed shard by shard"),
    log_every=typer.Option(10, help="write the loss terms to OUT/metrics.csv (and TensorBoard) every N steps"),
)


@train_app.command("stage1")
def train_stage1_cmd(
    ctx: typer.Context, data: Optional[Path] = _STAGE1["data"], out: Path = _STAGE1["out"], preset: str = _STAGE1["preset"],
    arch: str = _STAGE1["arch"], lmbda: float = _STAGE1["lmbda"], kl_weight: float = _STAGE1["kl_weight"],
    est_weight: float = _STAGE1["est_weight"], chroma_weight: float = _STAGE1["chroma_weight"],
    colour_shortcut: bool = _STAGE1["colour_shortcut"], cams: bool = _STAGE1["cams"],
    steps: int = typer.Option(20000), batch_size: int = typer.Option(8), crop: int = _STAGE1["crop"],
    lr: float = typer.Option(1e-4), val_every: int = typer.Option(1000),
    checkpoint_every: int = typer.Option(250), threads: int = typer.Option(0), bf16: bool = _STAGE1["bf16"],
    channels_last: bool = typer.Option(False), resume: bool = _STAGE1["resume"],
    name: Optional[str] = _STAGE1["name"], init_from: Optional[str] = _STAGE1["init_from"],
    extra_data: Optional[list[Path]] = _STAGE1["extra_data"], split: str = _STAGE1["split"],
    rate_lambdas: Optional[str] = _STAGE1["rate_lambdas"], colour_space: str = _STAGE1["colour_space"],
    ground_channels: Optional[int] = _STAGE1["ground_channels"], lr_schedule: str = _STAGE1["lr_schedule"],
    onboard_channels: Optional[int] = _STAGE1["onboard_channels"],
    lr_drop_at: float = _STAGE1["lr_drop_at"], final_lr: float = _STAGE1["final_lr"],
    warmup_steps: int = _STAGE1["warmup_steps"], ema_decay: float = _STAGE1["ema_decay"],
    gain_lr_scale: float = _STAGE1["gain_lr_scale"], val_images: int = _STAGE1["val_images"],
    seed: int = typer.Option(0),
    device: str = _STAGE1["device"], max_minutes: Optional[float] = _STAGE1["max_minutes"],
    pause_at: Optional[int] = _STAGE1["pause_at"], start_step: int = _STAGE1["start_step"],
    ground_only: bool = _STAGE1["ground_only"], bands: int = _STAGE1["bands"],
    config: Optional[Path] = _TRAIN["config"], precision: str = _TRAIN["precision"],
    workers: int = _TRAIN["workers"], stream: bool = _TRAIN["stream"], log_every: int = _TRAIN["log_every"],
) -> None:
    """Stage 1: train E, hyperprior, Ẽ, ẑ0 and D with L = R + λ·255²·MSE (+ aux, + β·KL).
    Several GPUs: torchrun --nproc-per-node N -m cosmic.cli train stage1 ..."""
    options = dict(locals())
    from cosmic.training.stage1 import train_stage1

    final = train_stage1(_stage1_config(options), resume=options["resume"])
    typer.echo(f"final model: {final}")


def _stage1_config(options: dict):
    """Stage1Config from the options of `cosmic train stage1`, checked (one-line InputErrors)."""
    from cosmic.models.registry import MODELS
    from cosmic.training.stage1 import Stage1Config

    o = _with_config(Stage1Config, options)
    check_tile(o["crop"], "--crop")
    if not 0.0 <= o["est_weight"] <= 1.0:
        raise InputError(f"--est-weight {o['est_weight']}: must be in [0, 1]")
    if o["arch"] not in MODELS:
        raise InputError(f"--arch {o['arch']}: unknown; choose one of {', '.join(MODELS)}")
    return Stage1Config(**o)


def _path_texts(paths: Optional[list[Path]]) -> Optional[list[str]]:
    """``--extra-data`` paths as the text a training config stores (None when none are given)."""
    return [str(p) for p in paths] if paths else None


def _with_config(config_class, options: dict) -> dict:
    """A trainer's config arguments: the command's options (paths as text, lists parsed) with a
    --config file under the options given explicitly; --data checked."""
    from cosmic.training.config import load_config, merge_config

    ctx = options["ctx"]
    o = {k: v for k, v in options.items() if k not in ("ctx", "config", "resume")}
    explicit = {k for k in o if getattr(ctx.get_parameter_source(k), "name", "") in ("COMMANDLINE", "ENVIRONMENT")}
    if "no_metadata" in o:  # stage 2's flag for its use_metadata field
        o["use_metadata"] = not o.pop("no_metadata")
        explicit |= {"use_metadata"} if "no_metadata" in explicit else set()
    for key in ("data", "out", "init_from"):
        o[key] = str(o[key]) if o.get(key) is not None else o.get(key)
    o["extra_data"] = _path_texts(o.get("extra_data"))
    if isinstance(o.get("rate_lambdas"), str):
        o["rate_lambdas"] = [float(v) for v in o["rate_lambdas"].split(",")]
    if options["config"] is not None:
        o = merge_config(config_class, o, load_config(options["config"]), explicit)
    if not o.get("data"):
        raise InputError("--data: give the training images (or a --config file with 'data')")
    if not Path(o["data"]).exists():
        raise InputError(f"--data {o['data']}: no such directory")
    return o


@train_app.command("stage2")
def train_stage2_cmd(
    ctx: typer.Context,
    stage1: Optional[str] = typer.Option(None, help="stage-1 model directory or shipped name (frozen; required "
                                                    "unless the --config file gives it)"),
    data: Optional[Path] = typer.Option(None, help="folder of images (SPLITS.json and NAME.json sidecars "
                                                   "honoured), or of .tar shards with --stream"),
    out: Path = typer.Option(Path("runs/stage2")), preset: str = typer.Option("small", help="UNet size: paper or small"),
    steps: int = typer.Option(20000), batch_size: int = typer.Option(8, help="global batch (split over processes)"),
    crop: int = typer.Option(256), lr: float = typer.Option(1e-4), ema_decay: float = typer.Option(0.999),
    gsd: Optional[float] = typer.Option(None, help="GSD in metres known for the whole dataset (UC Merced: 0.3048)"),
    init_from: Optional[Path] = typer.Option(
        None, help="warm start: a diffusers UNet saved with save_pretrained, or a COSMIC stage-2 model"),
    extra_data: Optional[list[Path]] = typer.Option(
        None, help="images or folders (sidecars honoured) whose random crops join the training set"),
    no_metadata: bool = typer.Option(False, help="ablation w/o ME: ignore all metadata"),
    residual: bool = typer.Option(
        True, help="diffuse z0 - ẑ0(y_hat), the detail the no-compensation decode misses (ours); "
                   "--no-residual diffuses z0 itself, as the paper does"),
    checkpoint_every: int = typer.Option(250), threads: int = typer.Option(0), seed: int = typer.Option(0),
    device: str = _STAGE1["device"], config: Optional[Path] = _TRAIN["config"], precision: str = _TRAIN["precision"],
    workers: int = _TRAIN["workers"], stream: bool = _TRAIN["stream"], log_every: int = _TRAIN["log_every"],
    split: str = _STAGE1["split"],
) -> None:
    """Stage 2: train the noise predictor ε_θ(z_t, t, y_hat, metadata) on frozen stage 1 (Eq. 5)."""
    options = dict(locals())
    from cosmic.training.stage2 import Stage2Config, train_stage2

    o = _with_config(Stage2Config, options)
    if not o.get("stage1"):
        raise InputError("--stage1: give the frozen stage-1 model (or a --config file with 'stage1')")
    check_tile(o["crop"], "--crop")
    final = train_stage2(Stage2Config(**o))
    typer.echo(f"diffusion model: {final} (copy it to MODEL_DIR/diffusion to use it)")


@train_app.command("codebook")
def train_codebook_cmd(
    stage: int = typer.Option(..., help="1: VQGAN codebook, 2: code prediction, 3: HPIN (each needs the last)"),
    data: Path = typer.Option(..., help="folder of images (SPLITS.json honoured; never the val split)"),
    out: Path = typer.Option(Path("runs/codebook"), help="run directory; the prior is assembled in OUT/prior"),
    preset: str = typer.Option("small", help="network sizes: small (CPU) or paper"),
    split: str = typer.Option("train+train_extra"), steps: int = typer.Option(2000),
    batch_size: int = typer.Option(8), crop: int = typer.Option(64), lr: float = typer.Option(2e-4),
    feature_weight: float = typer.Option(0.05, help="classifier feature loss weight (our LPIPS stand-in; 0: off)"),
    lq_model: str = typer.Option("cosmic-small-vr", help="stages 2-3: the codec whose steps-0 decodes are the input"),
    lq_qualities: str = typer.Option("1,2", help="stages 2-3: its qualities, comma-separated"),
    lq_images: int = typer.Option(400, help="stages 2-3: training images coded and decoded (cached)"),
    init_from: Optional[str] = typer.Option(
        None, help="a prior (directory or shipped name) to continue from: earlier stages copied, this stage warm"),
    disc_weight: float = typer.Option(0.05, help="stage 1: PatchGAN hinge loss weight"),
    hpin_disc_weight: float = typer.Option(0.0, help="stage 3: PatchGAN hinge loss weight (0: none)"),
    disc_start: float = typer.Option(0.6, help="the discriminator starts after this fraction of the steps"),
    max_minutes: Optional[float] = typer.Option(None, help="checkpoint and stop after this much wall time"),
    threads: int = typer.Option(1), seed: int = typer.Option(0),
    resume: bool = typer.Option(True, help="continue from OUT/stageN/last if present"),
) -> None:
    """Train the Code-RSIC codebook prior (cosmic.codebook), one stage at a time."""
    from cosmic.training.codebook import CodebookConfig, train_codebook

    if not data.is_dir():
        raise InputError(f"--data {data}: not a directory")
    check_tile(crop, "--crop", 8)
    qualities = float_list("--lq-qualities", lq_qualities)
    cfg = CodebookConfig(stage=stage, data=str(data), out=str(out), preset=preset, split=split, steps=steps,
                         batch_size=batch_size, crop=crop, lr=lr, feature_weight=feature_weight,
                         lq_model=lq_model, lq_qualities=qualities, lq_images=lq_images, init_from=init_from,
                         disc_weight=disc_weight, hpin_disc_weight=hpin_disc_weight, disc_start=disc_start,
                         max_minutes=max_minutes, threads=threads, seed=seed)
    typer.echo(f"codebook prior: {train_codebook(cfg, resume=resume)}")


@train_app.command("enhance")
def train_enhance_cmd(
    data: Path = typer.Option(..., help="folder of images (SPLITS.json honoured), e.g. UC Merced"),
    out: Path = typer.Option(Path("runs/enhance")), preset: str = typer.Option("small", help="small or paper"),
    split: str = typer.Option("train+train_extra", help="SPLITS.json lists, joined by '+' (never val)"),
    extra_data: Optional[list[Path]] = typer.Option(
        None, help="large scenes (images or folders) cut into overlapping squares that join the training set"),
    steps: str = typer.Option("1500,500,600", help="steps of stage I, the prior regressor and the LDM"),
    crop: int = typer.Option(64), batch_size: int = typer.Option(8), lr: float = typer.Option(5e-4),
    rates_per_image: int = typer.Option(2, help="rates per image (JPEG2000: log-uniform over 0.05-0.5 bpp; "
                                                "COSMIC: qualities uniform over the model's range)"),
    source: str = typer.Option("jpeg2000", help="jpeg2000, or the COSMIC model whose decodes to enhance"),
    init_from: Optional[str] = typer.Option(None, help="start from this enhancer (same preset; a warm start)"),
    limit: Optional[int] = typer.Option(None, help="use only N images, evenly spaced over the split"),
    max_minutes: Optional[float] = typer.Option(None, help="wall-time cap of each phase"),
    max_bpp: float = typer.Option(0.5, help="JPEG2000 training rates: log-uniform over 0.05..MAX_BPP"),
    tune_men: bool = typer.Option(False, help="the prior-regressor phase fine-tunes MEN too (joint MSE)"),
    seed: int = typer.Option(0), threads: int = typer.Option(1),
) -> None:
    """LDM-RSIC: train an enhancer of JPEG2000 or COSMIC decodes (stage I, prior regressor, stage
    II); resumes from OUT."""
    from cosmic.training.ldm_rsic import PHASES, EnhanceConfig, train_enhancer

    if not data.is_dir():
        raise InputError(f"--data {data}: not a directory")
    counts = int_list("--steps", steps, "1500,500,600")
    check_tile(crop, "--crop", 8)
    if len(counts) != len(PHASES) or not 0.05 < max_bpp <= 8:
        raise InputError("--steps: three counts; --crop: a positive multiple of 8; --max-bpp: over 0.05, at most 8")
    cfg = EnhanceConfig(data=str(data), out=str(out), preset=preset, split=split, steps=dict(zip(PHASES, counts)),
                        crop=crop, batch_size=batch_size, lr=lr, rates_per_image=rates_per_image, limit=limit,
                        max_minutes=max_minutes, seed=seed, threads=threads, source=source, init_from=init_from,
                        bpp_range=(0.05, max_bpp), tune_men=tune_men,
                        extra_data=_path_texts(extra_data))
    typer.echo(f"enhancer: {train_enhancer(cfg)}")


