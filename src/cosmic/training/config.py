"""The trainers' configs (dataclasses, with the command-line help of their fields beside them:
``cosmic train ...``'s options are generated from these, :mod:`cosmic.cli.fields`) and training
configuration files: ``cosmic train stage1 --config run.yaml`` (or ``.json``). This module imports
no torch, so the command line starts without it.

The keys are the trainer's config fields (:class:`~cosmic.training.stage1.Stage1Config`,
:class:`~cosmic.training.stage2.Stage2Config`), which are the command's option names with ``_``
for ``-`` (``batch_size`` or ``batch-size``); list options are lists (``rate_lambdas: [0.001,
0.004]``). Options given on the command line override the file. Every run writes the complete
config it used as ``OUT/stage1_config.json`` (``stage2_config.json``), which ``--config`` reads
back: the same run again, or a variant with a few flags changed.

YAML needs PyYAML (``pip install cosmic[train]``); JSON needs nothing.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from cosmic.errors import InputError

__all__ = ["load_config", "write_config", "merge_config", "CropSource", "CROP_HELP", "Stage1Config", "STAGE1_HELP",
           "Stage2Config", "STAGE2_HELP", "CodebookConfig", "CODEBOOK_HELP", "EnhanceConfig", "ENHANCE_HELP",
           "RUN_CONTROL"]

#: options a resumed run may change: how long, where and how fast it runs, not what it trains
RUN_CONTROL = frozenset({
    "out", "steps", "val_every", "val_images", "val_qualities", "checkpoint_every", "log_every", "threads",
    "pause_at", "max_minutes", "device", "precision", "bf16", "channels_last", "workers", "stream",
    "batch_size", "init_from", "start_step", "resume"})


@dataclass(kw_only=True)
class CropSource:
    """Where a trainer's random crops come from: the fields of stage 1's loader
    (:func:`crop_loader`), which the codebook trainer shares. Both trainers'
    configs derive from it, so a field the loader reads exists in each of them."""

    data: str
    split: str = "train"  # SPLITS.json lists to train on, joined by '+' (e.g. train+train_extra)
    crop: int = 128
    batch_size: int = 8
    extra_data: list[str] | None = None  # images or folders mixed into the training crops
    seed: int = 0
    workers: int = 0
    stream: bool = False  # read training images from disk as needed instead of holding them in RAM
    bands: int = 3  # 1: one-band crops (R, G, B or luminance, see ImageFolder); 3: RGB


#: the command-line help of :class:`CropSource`'s fields (``cosmic train stage1 / codebook``)
CROP_HELP = {
    "data": "folder of PNG/JPEG/TIFF images (SPLITS.json honoured), or of .tar shards with --stream; "
            "required unless the --config file gives it",
    "split": "SPLITS.json lists to train on, joined by '+' (never val)",
    "crop": "random crop size (multiple of 64)",
    "batch_size": "global batch (split over processes under torchrun)",
    "extra_data": "images or folders (e.g. large scenes) whose random crops join the training set",
    "seed": "seed of the crops, the rates and torch",
    "workers": "DataLoader worker processes reading and cropping images",
    "stream": "read images from disk as needed (any dataset size) instead of holding them in memory; a "
              "folder of .tar shards is streamed shard by shard",
    "bands": "1: a single-band model trained on one band of each crop (R, G, B or luminance); --init-from an "
             "RGB model converts it exactly",
}


@dataclass(kw_only=True)
class Stage1Config(CropSource):
    out: str
    preset: str = "small"
    arch: str = "cosmic"
    lmbda: float = 0.0026
    kl_weight: float = 0.5
    est_weight: float = 0.5  # weight of the no-compensation (ẑ0) path in the distortion term
    chroma_weight: float = 0.0  # extra weight on the ẑ0 path's low-pass colour error
    steps: int = 20000
    lr: float = 1e-4
    aux_lr: float = 1e-3
    lr_drop_at: float = 0.85  # fraction of steps after which the decay phase starts
    lr_schedule: str = "step"  # "step": one 10x drop at lr_drop_at; "cosine": cosine to final_lr
    final_lr: float = 0.02  # with "cosine": the last step's lr as a fraction of lr
    warmup_steps: int = 0  # linear warm-up from lr/100
    gain_lr_scale: float = 1.0  # the gain units' lr as a multiple of lr (see _parameter_groups)
    ema_decay: float = 0.0  # >0: keep an EMA of the weights (AveragedModel) and ship that
    val_every: int = 1000
    val_images: int = 42
    checkpoint_every: int = 250
    threads: int = 0  # 0: torch's default
    bf16: bool = False
    channels_last: bool = True
    name: str | None = None
    init_from: str | None = None  # start from this model's weights (e.g. a new λ); fresh optimizer
    colour_shortcut: bool = False  # add the colour shortcut to E (see ColourShortcut)
    cams: bool = True  # False: the paper's "w/o CAM" ablation (Fig. 6), E without its CAMs
    rate_lambdas: list[float] | None = None  # variable rate: λ of quality 1..K (ascending)
    colour_space: str = "rgb"  # "ycbcr": E codes YCbCr (see cosmic.onboard.rate)
    ground_channels: int | None = None  # override the preset's ground width
    onboard_channels: int | None = None  # override E's width (the preset's N); the hyperprior keeps N
    context: str | None = None  # "checkerboard" or "channel": train with a context in y's entropy model
    val_qualities: list[float] | None = None  # variable rate: qualities validated on real files
    pause_at: int | None = None  # checkpoint and stop at this step (resume later, same schedule)
    max_minutes: float | None = None  # checkpoint and stop after this much wall time
    device: str = "auto"  # auto, cpu, cuda, cuda:N (under torchrun: each rank's cuda:LOCAL_RANK)
    start_step: int = 0  # with init_from: continue a campaign's schedule and data order from here
    ground_only: bool = False  # train the ground decoder only (on-board frozen; see _freeze_onboard)
    precision: str = "fp32"  # fp32, bf16 or fp16 (CUDA) autocast of the forward pass; bf16=True: bf16
    log_every: int = 10  # loss terms to metrics.csv / TensorBoard every N steps


#: the command-line help of Stage1Config's fields (``cosmic train stage1 --help``; the crop fields' in CROP_HELP)
STAGE1_HELP = {
    **CROP_HELP,
    "out": "run directory (checkpoints, final model)",
    "preset": "paper or small",
    "arch": "cosmic, or a CompressAI baseline trained the same way: bmshj2018-hyperprior, mbt2018-mean",
    "lmbda": "rate-distortion trade-off λ (paper: 0.00067..0.005)",
    "kl_weight": "weight of the z0 KL term, in bpp units",
    "est_weight": "share of the distortion term given to the no-compensation (ẑ0) path, 0..1",
    "chroma_weight": "extra weight on the ẑ0 path's block-averaged colour error (makes y_hat carry colour)",
    "steps": "training steps (the schedule's length)",
    "lr": "learning rate (Adam; the schedule's peak)",
    "aux_lr": "lr of the entropy models' quantiles (the aux optimizer)",
    "lr_drop_at": "fraction of --steps where the decay starts",
    "lr_schedule": "step (10x drop at --lr-drop-at) or cosine (to --final-lr)",
    "final_lr": "cosine: last lr as a fraction of --lr",
    "warmup_steps": "linear lr warm-up steps",
    "gain_lr_scale": "variable rate: the gain units' lr as a multiple of --lr (e.g. 10 when --init-from a "
                     "model and widening --rate-lambdas)",
    "ema_decay": "keep (and ship) an EMA of the weights, e.g. 0.999",
    "val_every": "validate every N steps",
    "val_images": "validation images (a fixed spread-out subset of val)",
    "checkpoint_every": "write OUT/last every N steps",
    "threads": "torch threads (0: default)",
    "bf16": "bf16 autocast (the older flag of --precision bf16; slower on CPUs without AMX)",
    "channels_last": "channels-last memory format for the network",
    "name": "model name written into bitstreams",
    "init_from": "start from this model's weights (new λ)",
    "colour_shortcut": "add the colour shortcut to E (block-mean colour into y; zero-initialised, so "
                       "--init-from a model without it starts where that model was)",
    "cams": "--no-cams: E without its CAMs (the paper's w/o CAM ablation)",
    "rate_lambdas": "variable rate: comma-separated ascending λs of qualities 1..K (one model codes them all)",
    "colour_space": "rgb or ycbcr (the colour space E codes)",
    "ground_channels": "width of the ground decoder (default: the preset's)",
    "context": "checkerboard (He et al. 2021) or channel (Minnen & Singh 2020): a context for y's entropy "
               "model, trained with the rest; an --init-from model without one starts it at zero",
    "onboard_channels": "width of the on-board encoder E (default: the preset's N; the hyperprior keeps N); "
                        "with --init-from widens it exactly",
    "val_qualities": "variable rate: comma-separated qualities validated on real files (default: 1, middle, K)",
    "pause_at": "checkpoint and stop at this step (resume later)",
    "max_minutes": "checkpoint and stop after this much wall time",
    "device": "auto, cpu, cuda or cuda:N (under torchrun: each process's GPU; validation codes on the CPU)",
    "start_step": "with --init-from: continue a campaign's schedule from this step",
    "ground_only": "with --init-from: train the ground decoder only (bitstreams unchanged; --ground-channels "
                   "may widen it)",
    "precision": "fp32, bf16 or fp16 (CUDA) autocast of the network's forward pass",
    "log_every": "write the loss terms to OUT/metrics.csv (and TensorBoard) every N steps",
}


@dataclass
class Stage2Config:
    stage1: str
    data: str
    out: str
    preset: str = "small"
    steps: int = 20000
    batch_size: int = 8
    crop: int = 256
    lr: float = 1e-4
    ema_decay: float = 0.999
    checkpoint_every: int = 250
    gsd: float | None = None  # a GSD known for the whole dataset (UC Merced: 0.3048 m)
    init_from: str | None = None  # a diffusers UNet, or a COSMIC stage-2 model to warm-start from
    use_metadata: bool = True
    residual: bool = True  # diffuse z0 - ẑ0(y_hat) (ours) instead of z0 itself (the paper)
    extra_data: list[str] | None = None  # images or folders (with sidecars) mixed into the crops
    seed: int = 0
    threads: int = 0
    device: str = "auto"  # auto, cpu, cuda, cuda:N (under torchrun: each rank's cuda:LOCAL_RANK)
    precision: str = "fp32"  # fp32, bf16 or fp16 (CUDA) autocast of the noise predictor
    workers: int = 0  # DataLoader worker processes
    stream: bool = False  # read training images from disk as needed instead of holding them in RAM
    log_every: int = 10
    split: str = "train"  # SPLITS.json split(s) of --data, '+'-joined (never val)


#: the command-line help of Stage2Config's fields (``cosmic train stage2 --help``)
STAGE2_HELP = {
    "stage1": "stage-1 model directory or shipped name (frozen; required unless the --config file gives it)",
    "data": "folder of images (SPLITS.json and NAME.json sidecars honoured), or of .tar shards with --stream",
    "out": "run directory (checkpoints, final model)",
    "preset": "UNet size: paper or small",
    "steps": "training steps",
    "batch_size": "global batch (split over processes)",
    "crop": "random crop size (multiple of 64)",
    "lr": "learning rate (AdamW)",
    "ema_decay": "decay of the EMA of the weights (what is shipped)",
    "checkpoint_every": "write OUT/last every N steps",
    "seed": "seed of the crops and torch",
    "gsd": "GSD in metres known for the whole dataset (UC Merced: 0.3048)",
    "init_from": "warm start: a diffusers UNet saved with save_pretrained, or a COSMIC stage-2 model",
    "use_metadata": "--no-metadata: the ablation w/o ME, all metadata ignored",
    "residual": "diffuse z0 - ẑ0(y_hat), the detail the no-compensation decode misses (ours); --no-residual "
                "diffuses z0 itself, as the paper does",
    "extra_data": "images or folders (sidecars honoured) whose random crops join the training set",
    "threads": "torch threads (0: default)",
    "device": "auto, cpu, cuda or cuda:N (under torchrun: each process's GPU)",
    "precision": "fp32, bf16 or fp16 (CUDA) autocast of the noise predictor",
    "workers": "DataLoader worker processes reading and cropping images",
    "stream": "read images from disk as needed instead of holding them in memory",
    "log_every": "write the loss to OUT/metrics.csv (and TensorBoard) every N steps",
    "split": "SPLITS.json lists to train on, joined by '+' (never val)",
}


def load_config(path: str | os.PathLike) -> dict:
    """The mapping in a JSON or YAML file (keys with ``-`` normalised to ``_``); InputError for a
    missing, unreadable or non-mapping file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"--config {path}: no such file")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise InputError(f"--config {path}: YAML needs PyYAML (pip install 'cosmic[train]'), "
                             "or write the file as JSON") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InputError(f"--config {path}: not valid YAML ({_first_line(exc)})") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"--config {path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise InputError(f"--config {path}: expected a mapping of option names to values")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def merge_config(config_class, cli: dict, file_values: dict, explicit: set[str]) -> dict:
    """Constructor arguments of ``config_class``: ``file_values`` over the command line's
    defaults, the options given explicitly on the command line (``explicit``) over both. An
    unknown key in the file is an InputError naming the valid ones."""
    fields = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(file_values) - fields)
    if unknown:
        raise InputError(f"--config: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(fields))}")
    merged = dict(cli)
    for key, value in file_values.items():
        if key not in explicit:
            merged[key] = value
    return merged


def write_config(path: str | os.PathLike, values: dict) -> Path:
    """Write the config a run used (JSON, atomically); ``load_config`` reads it back."""
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(values, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


@dataclass(kw_only=True)
class CodebookConfig(CropSource):
    """A codebook trainer's run; the crop fields (:class:`CropSource`) are stage 1's loader's,
    with this trainer's defaults (split, crop) set below."""

    stage: int
    out: str
    preset: str = "small"
    split: str = "train+train_extra"
    steps: int = 2000
    batch_size: int = 8
    crop: int = 64
    lr: float = 2e-4
    lr_schedule: str = "cosine"
    lr_drop_at: float = 0.0  # cosine over the whole run (after the warm-up)
    final_lr: float = 0.05
    warmup_steps: int = 100
    ema_decay: float = 0.995
    ssim_weight: float = 0.2
    feature_weight: float = 0.05  # 0: no classifier feature loss
    classifier: str = "classifier-ucm"
    disc_start: float = 0.6  # the discriminator (stage 1; stage 3's if any) starts after this fraction of steps
    disc_weight: float = 0.05  # stage 1's hinge GAN weight
    hpin_disc_weight: float = 0.0  # stage 3's (0: no GAN, the default)
    init_from: str | None = None  # a prior (directory or shipped name) this run continues from
    latent_weight: float = 1.0  # stage 2: L2 between E_L's latent and the original's codes
    lq_model: str = "cosmic-small-vr"
    lq_qualities: list = field(default_factory=lambda: [1.0, 2.0])
    lq_images: int = 400
    checkpoint_every: int = 200
    max_minutes: float | None = None
    pause_at: int | None = None  # checkpoint and stop at this step (resume later, same schedule)
    threads: int = 1


#: the command-line help of CodebookConfig's fields (``cosmic train codebook --help``)
CODEBOOK_HELP = {
    **CROP_HELP,
    "stage": "1: VQGAN codebook, 2: code prediction, 3: HPIN (each needs the last)",
    "data": "folder of images (SPLITS.json honoured; never the val split)",
    "out": "run directory; the prior is assembled in OUT/prior",
    "preset": "network sizes: small (CPU) or paper",
    "crop": "random crop size (multiple of 64)",
    "steps": "training steps of this stage",
    "lr": "learning rate (Adam; the schedule's peak)",
    "feature_weight": "classifier feature loss weight (our LPIPS stand-in; 0: off)",
    "lq_model": "stages 2-3: the codec whose steps-0 decodes are the input",
    "lq_qualities": "stages 2-3: its qualities, comma-separated",
    "lq_images": "stages 2-3: training images coded and decoded (cached)",
    "init_from": "a prior (directory or shipped name) to continue from: earlier stages copied, this stage warm",
    "disc_weight": "stage 1: PatchGAN hinge loss weight",
    "hpin_disc_weight": "stage 3: PatchGAN hinge loss weight (0: none)",
    "disc_start": "the discriminator starts after this fraction of the steps",
    "max_minutes": "checkpoint and stop after this much wall time",
    "pause_at": "checkpoint and stop at this step (resume later)",
    "threads": "torch threads (0: default)",
    "lr_schedule": "step (10x drop at --lr-drop-at) or cosine (to --final-lr)",
    "lr_drop_at": "fraction of --steps where the decay starts (0: cosine over the whole run)",
    "final_lr": "cosine: last lr as a fraction of --lr",
    "warmup_steps": "linear lr warm-up steps",
    "ema_decay": "EMA of the weights (what the prior ships; 0: none)",
    "ssim_weight": "weight of 1 - MS-SSIM (3 scales)",
    "classifier": "the scene classifier whose features the feature loss compares",
    "latent_weight": "stage 2: L2 between E_L's latent and the original's codes",
    "checkpoint_every": "write OUT/stageN/last every N steps",
}


@dataclass
class EnhanceConfig:
    data: str
    out: str
    source: str = "jpeg2000"  # or a COSMIC model (shipped name or directory), e.g. cosmic-small-vr
    init_from: str | None = None  # an enhancer (directory or shipped name) of the same preset to start from
    preset: str = "small"
    split: str = "train+train_extra"
    # large scenes (images or folders) cut into overlapping image_size squares that join the split's
    # images: stride image_size / 4, squares that are half fill or more left out
    extra_data: list[str] | None = None
    rates_per_image: int = 2
    bpp_range: tuple = (0.05, 0.5)
    limit: int | None = None  # use only N images of the split, evenly spaced over it
    image_size: int = 256  # images: their top-left image_size square (smaller: skipped); scenes: a grid of squares
    crop: int = 64
    batch_size: int = 8
    lr: float = 5e-4
    final_lr: float = 0.05
    warmup_steps: int = 50
    ema_decay: float = 0.995
    steps: dict = field(default_factory=lambda: {"stage1": 1500, "regressor": 500, "ldm": 600})
    prior_weight: float = 0.01
    # the regressor phase also fine-tunes MEN on the estimated prior (ours: the paper fine-tunes MEN
    # on the LDM's generated prior in stage II; with a deterministic estimate the same idea is a
    # joint MSE through MEN. The stage-I path (self-encoder prior) then no longer matches MEN.)
    tune_men: bool = False
    max_minutes: float | None = None  # per phase
    checkpoint_every: int = 100
    seed: int = 0
    threads: int = 1


#: the command-line help of EnhanceConfig's fields (``cosmic train enhance --help``)
ENHANCE_HELP = {
    "data": "folder of images (SPLITS.json honoured), e.g. UC Merced",
    "out": "run directory (pairs cache, phases' checkpoints, final enhancer)",
    "source": "jpeg2000, or the COSMIC model whose decodes to enhance",
    "init_from": "start from this enhancer (same preset; a warm start)",
    "preset": "small or paper",
    "split": "SPLITS.json lists, joined by '+' (never val)",
    "extra_data": "large scenes (images or folders) cut into overlapping squares that join the training set",
    "rates_per_image": "rates per image (JPEG2000: log-uniform over 0.05-0.5 bpp; COSMIC: qualities uniform over "
                       "the model's range)",
    "limit": "use only N images, evenly spaced over the split",
    "image_size": "the square each image is cut to (smaller images skipped)",
    "max_minutes": "wall-time cap of each phase",
    "tune_men": "the prior-regressor phase fine-tunes MEN too (joint MSE)",
    "threads": "torch threads (0: default)",
    "crop": "random crop size of the training pairs (multiple of 8)",
    "batch_size": "batch size",
    "lr": "learning rate (Adam; the schedule's peak)",
    "final_lr": "cosine: last lr as a fraction of --lr",
    "warmup_steps": "linear lr warm-up steps of each phase",
    "ema_decay": "EMA of the weights (what each phase keeps)",
    "steps": "steps of stage I, the prior regressor and the LDM",
    "prior_weight": "regressor phase: weight of MSE(R, F) beside the output's MSE",
    "checkpoint_every": "write OUT/<phase>/last every N steps",
    "seed": "seed of the coded rates, the crops and torch",
    "bpp_range": "JPEG2000 training rates: log-uniform over this range",
}
