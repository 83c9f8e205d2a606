"""Training of the Code-RSIC prior (:mod:`cosmic.codebook`), in the paper's three stages
(Li & Hou, Fig. 3; ``cosmic train codebook --stage 1|2|3``):

1. **VQGAN** by self-reconstruction on high-quality images (UC Merced train + train_extra, never
   val): L1 + λ_s·(1 - MS-SSIM) + λ_f·feature loss + commitment (the EMA codebook needs no
   codebook term) + λ_g·hinge GAN loss of a PatchGAN that starts after ``disc_start`` of the run.
   The feature loss replaces the paper's LPIPS (no ImageNet weights here): the L2 distance of the
   first three stages' activations of our scene classifier ``classifier-ucm``
   (:mod:`cosmic.evaluation.classifier`). MS-SSIM uses three scales (weights of Wang et al.'s
   first three, renormalised): five need sides > 160 px and the CPU crops are 64 px.
2. **Code prediction**: codebook and D_H frozen; E_L + Transformer on the decoded image predict the
   codes of the original (cross-entropy, plus CodeFormer's L2 between E_L's latent and the
   original's quantised latent). Decoded images: the shipped COSMIC model (``--lq-model``,
   steps 0) at ``--lq-qualities``, coded as real files through the pipelines and cached.
3. **HPIN** with VQGAN and predictor frozen: L1 + λ_s·(1 - MS-SSIM) + λ_f·feature loss on the
   output at fidelity 0 (the output is linear in w, so w = 0 trains every w), plus, with
   ``hpin_disc_weight`` > 0, the same hinge GAN term as stage 1 (its own PatchGAN, from
   ``disc_start``). The paper trains this stage adversarially; our default leaves the GAN off
   (``hpin_disc_weight`` 0) until it is measured to pay on the CPU budget.

``init_from`` (a prior directory or a shipped name) continues from an earlier prior: the components
of the stages before this one are copied into ``OUT/prior`` where it has none, and this stage's
network starts from that prior's weights (the optimiser and schedule start afresh), so stages 2-3
can be retrained on a new codec's decodes without retraining the codebook.

Trainer conventions are stage 1's (:mod:`cosmic.training.stage1`): crops are functions of
(seed, step), a cosine learning rate after a linear warm-up, an EMA of the weights, checkpoints in
``OUT/stageN/last`` that resume exactly, ``max_minutes``. The prior is assembled in
``OUT/prior`` (:class:`~cosmic.codebook.prior.CodebookPrior`) after each stage.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cosmic.codebook import HPIN, VQGAN, CodePredictor, PatchDiscriminator, preset
from cosmic.errors import InputError, first_line
from cosmic.training.checkpoint import load_checkpoint, make_ema, prepare_run, save_checkpoint
from cosmic.training.config import write_config
from cosmic.training.config import CODEBOOK_HELP, CodebookConfig  # noqa: F401  (re-exported)
from cosmic.training.data import crop_loader, refuse_val_split
from cosmic.training.loop import Cadence, Task, TrainLoop, set_lr
from cosmic.training.metrics_log import MetricsLog
from cosmic.training.stage1 import learning_rate

__all__ = ["CodebookConfig", "CODEBOOK_HELP", "train_codebook", "FeatureLoss", "lq_pairs", "measure_prior", "ms_ssim3"]

MS_SSIM_3 = [0.0448 / 0.6305, 0.2856 / 0.6305, 0.3001 / 0.6305]


class FeatureLoss(torch.nn.Module):
    """Mean squared distance of the scene classifier's activations after its first three stages
    (stem + two conv stages), images in [0, 1]; the classifier is frozen. Our LPIPS stand-in."""

    def __init__(self, name: str = "classifier-ucm", depth: int = 3):
        super().__init__()
        from cosmic.evaluation.classifier import SceneClassifier
        from cosmic.zoo import model_path

        clf = SceneClassifier.from_pretrained(model_path(name))
        self.prepare, self.body = clf._prepare, clf.body[:depth].eval()
        for p in self.body.parameters():
            p.requires_grad_(False)

    def forward(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.body(self.prepare(x))
        return F.mse_loss(self.body(self.prepare(y)), target)


def _check(cfg: CodebookConfig) -> None:
    if cfg.stage not in (1, 2, 3):
        raise InputError(f"--stage {cfg.stage}: choose 1, 2 or 3")
    refuse_val_split(cfg.split)
    if cfg.crop <= 0 or cfg.crop % 64:
        raise InputError(f"--crop {cfg.crop}: must be a positive multiple of 64")
    preset(cfg.preset)
    if min(cfg.disc_weight, cfg.hpin_disc_weight) < 0 or not 0 <= cfg.disc_start <= 1:
        raise InputError("--disc-weight / --hpin-disc-weight must be >= 0 and --disc-start within 0..1")


def ms_ssim3(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """MS-SSIM over three scales (Wang et al. 2003's first three weights, renormalised), images in
    [0, 1]: pytorch-msssim's ``ms_ssim`` with its five-scale size check (> 160 px) relaxed to the
    three scales used (> 40 px), by its own ``_ssim`` per scale."""
    from pytorch_msssim.ssim import _fspecial_gauss_1d, _ssim

    win = _fspecial_gauss_1d(11, 1.5).repeat([x.shape[1], 1, 1, 1]).to(x)
    weights = x.new_tensor(MS_SSIM_3)
    mcs = []
    for i in range(len(MS_SSIM_3)):
        ssim, cs = _ssim(y, x, win=win, data_range=1.0, size_average=False)
        if i < len(MS_SSIM_3) - 1:
            mcs.append(torch.relu(cs))
            y, x = F.avg_pool2d(y, 2), F.avg_pool2d(x, 2)
    values = torch.stack(mcs + [torch.relu(ssim)], dim=0)
    return torch.prod(values ** weights.view(-1, 1, 1), dim=0).mean()


def _recon_terms(cfg: CodebookConfig, y: torch.Tensor, x: torch.Tensor, feat) -> dict:
    """L1, 1 - MS-SSIM (3 scales) and the classifier feature loss of y against x."""
    terms = {"l1": (y - x).abs().mean(), "ssim": 1 - ms_ssim3(y.clamp(0, 1), x)}
    terms["feat"] = feat(y, x) if feat is not None else torch.zeros(())
    terms["loss"] = terms["l1"] + cfg.ssim_weight * terms["ssim"] + cfg.feature_weight * terms["feat"]
    return terms


def _psnr(y: torch.Tensor, x: torch.Tensor) -> float:
    mse = float(F.mse_loss(y.clamp(0, 1), x))
    return 10 * math.log10(1.0 / max(mse, 1e-12))


class _Adversary:
    """A PatchGAN with the hinge loss (stage 1, and stage 3 when asked), active from
    ``disc_start`` of the run; its own optimiser, checkpointed in ``last/disc``."""

    def __init__(self, cfg: CodebookConfig, weight: float):
        self.cfg, self.weight = cfg, weight
        self.disc = PatchDiscriminator()
        self.optimizers = {"disc": torch.optim.Adam(self.disc.parameters(), lr=cfg.lr, betas=(0.5, 0.9))}

    def active(self, step: int) -> bool:
        return step >= self.cfg.disc_start * self.cfg.steps

    def generator_loss(self, y: torch.Tensor) -> torch.Tensor:
        return -self.disc(y).mean()

    def discriminator_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.relu(1 - self.disc(x)).mean() + F.relu(1 + self.disc(y.detach())).mean()


class _Stage(Task):
    """What a stage trains (``model``), how (``train_step``), and with which frozen networks: the
    :class:`~cosmic.training.loop.Task` of the stage's loop."""

    adversary: _Adversary | None = None

    def __init__(self, cfg: CodebookConfig, out: Path, loop: TrainLoop):
        self.cfg, self.out, self.sizes, self.loop = cfg, out, preset(cfg.preset), loop
        self.feat = FeatureLoss(cfg.classifier) if cfg.feature_weight > 0 else None
        if cfg.init_from:
            _copy_earlier_stages(cfg, out / "prior")
        self.model = self.build()
        if cfg.init_from:
            _start_from(self.model, cfg.init_from, self.name)
        self.optimizers = {"main": torch.optim.Adam(self.model.parameters(), lr=cfg.lr, betas=(0.5, 0.9))}
        self.ema = make_ema(self.model, cfg.ema_decay) if cfg.ema_decay else None

    def step(self, batch, step: int) -> dict:
        x, lq = batch
        return self.train_step(x, lq, step)

    def update_ema(self) -> None:
        """The EMA of the weights; its copy takes the model's buffers (the EMA codebook is itself an average)."""
        if self.ema is not None:
            super().update_ema()
            with torch.no_grad():
                for mine, theirs in zip(self.ema.module.buffers(), self.model.buffers()):
                    mine.copy_(theirs)

    def on_log(self, state: dict, step: int, terms: dict) -> None:
        state["history"].append({"step": step, **terms})

    def save(self, directory: Path, state: dict) -> None:
        if self.adversary is not None:  # first, so that the main trainer.json marks a complete checkpoint
            save_checkpoint(directory / "disc", self.adversary.disc, self.adversary.optimizers, {"step": state["step"]})
        super().save(directory, state)

    def load(self, directory: Path) -> dict:
        state = super().load(directory)
        if self.adversary is not None:
            load_checkpoint(directory / "disc", self.adversary.disc, self.adversary.optimizers)  # the same RNG state
        return state

    def frozen(self, name: str):
        from cosmic.codebook.prior import COMPONENTS

        path = self.out / "prior" / name
        if not (path / "config.json").is_file():
            raise InputError(f"{path}: not found; train stage {list(COMPONENTS).index(name) + 1} first")
        net = COMPONENTS[name].from_pretrained(path)
        for p in net.parameters():
            p.requires_grad_(False)
        return net

    def optimise(self, loss: torch.Tensor, step: int, opt: torch.optim.Optimizer | None = None) -> None:
        opt = opt or self.optimizers["main"]
        set_lr(opt, learning_rate(self.cfg, step))
        opt.zero_grad(set_to_none=True)
        if not math.isfinite(float(loss.detach())):
            raise FloatingPointError(f"non-finite loss at step {step}")
        self.loop.optimise(loss, opt)

    def update(self, loss: torch.Tensor, terms: dict, x: torch.Tensor, y: torch.Tensor, step: int) -> None:
        """One step on ``loss`` plus, once the adversary is active, its generator term (into
        ``terms["g"]``); then one discriminator step (``terms["d"]``)."""
        adv = self.adversary
        gan = adv is not None and adv.active(step)
        if gan:
            terms["g"] = adv.generator_loss(y)
            loss = loss + adv.weight * terms["g"]
        self.optimise(loss, step)
        if gan:
            terms["d"] = adv.discriminator_loss(x, y)
            self.optimise(terms["d"], step, adv.optimizers["disc"])


def _prior_dir(name_or_dir: str) -> Path:
    from cosmic.zoo import model_path

    path = Path(model_path(name_or_dir))
    if not (path / "vqgan" / "config.json").is_file():
        raise InputError(f"--init-from {name_or_dir}: not a codebook prior (no vqgan/config.json)")
    return path


def _copy_earlier_stages(cfg: CodebookConfig, prior: Path) -> None:
    """Copy the components of the stages before ``cfg.stage`` from ``init_from`` where ``prior`` lacks them."""
    import shutil

    from cosmic.codebook.prior import COMPONENTS

    source = _prior_dir(cfg.init_from)
    for name in list(COMPONENTS)[: cfg.stage - 1]:
        if not (prior / name / "config.json").is_file() and (source / name).is_dir():
            shutil.copytree(source / name, prior / name, dirs_exist_ok=True)


def _start_from(model: torch.nn.Module, name_or_dir: str, component: str) -> None:
    """Load ``component``'s weights of the prior ``name_or_dir`` into ``model`` (same sizes)."""
    path = _prior_dir(name_or_dir) / component
    if not (path / "config.json").is_file():
        raise InputError(f"--init-from {name_or_dir}: it has no {component}")
    try:
        model.load_state_dict(type(model).from_pretrained(path).state_dict())
    except RuntimeError as exc:
        raise InputError(f"--init-from {name_or_dir}: its {component} does not fit this preset ({first_line(exc)})") from None


class _VQGANStage(_Stage):
    name = "vqgan"

    def build(self):
        self.adversary = _Adversary(self.cfg, self.cfg.disc_weight)
        return VQGAN(**self.sizes["vqgan"])

    def train_step(self, x: torch.Tensor, lq, step: int) -> dict:
        out = self.model(x)
        y = out["x_rec"]
        terms = _recon_terms(self.cfg, y, x, self.feat)
        self.update(terms["loss"] + out["commit"], terms, x, y, step)
        stats = {k: float(v.detach()) for k, v in terms.items()}
        return {**stats, "psnr": _psnr(y.detach(), x), "perplexity": out["perplexity"], "usage": out["usage"]}


class _PredictorStage(_Stage):
    name = "predictor"

    def build(self):
        self.vqgan = self.frozen("vqgan")
        model = CodePredictor(**self.sizes["predictor"])
        model.encoder.load_state_dict(self.vqgan.encoder.state_dict())  # E_L starts as E_H
        return model

    def train_step(self, x: torch.Tensor, lq: torch.Tensor, step: int) -> dict:
        with torch.no_grad():
            _, _, target, _ = self.vqgan.encode(x)
            z_q = self.vqgan.quantizer.lookup(target)
        logits, _, latent = self.model(lq)
        ce = F.cross_entropy(logits, target)
        lat = F.mse_loss(latent, z_q)
        self.optimise(ce + self.cfg.latent_weight * lat, step)
        acc = float((logits.argmax(1) == target).float().mean())
        return {"ce": float(ce.detach()), "latent": float(lat.detach()), "acc": acc}


class _HPINStage(_Stage):
    name = "hpin"

    def build(self):
        self.vqgan, self.predictor = self.frozen("vqgan"), self.frozen("predictor")
        if self.cfg.hpin_disc_weight > 0:
            self.adversary = _Adversary(self.cfg, self.cfg.hpin_disc_weight)
        return HPIN(**self.sizes["hpin"])

    def train_step(self, x: torch.Tensor, lq: torch.Tensor, step: int) -> dict:
        with torch.no_grad():
            logits, lq_feats, _ = self.predictor(lq)
            _, prior_feats = self.vqgan.decode_indices(logits.argmax(1))
        y = self.model(lq, lq_feats, prior_feats, 0.0)
        terms = _recon_terms(self.cfg, y, x, self.feat)
        self.update(terms["loss"], terms, x, y, step)
        stats = {k: float(v.detach()) for k, v in terms.items()}
        return {**stats, "psnr": _psnr(y.detach(), x), "psnr_lq": _psnr(lq, x)}


STAGES = {1: _VQGANStage, 2: _PredictorStage, 3: _HPINStage}


def lq_pairs(cfg: CodebookConfig, out: Path) -> tuple[np.ndarray, np.ndarray]:
    """(originals, decodes): ``lq_images`` images of the training split (spread over it, cut to
    256 x 256), each coded as a real ``.cosmic`` file by ``lq_model`` at one of ``lq_qualities``
    (in turn) and decoded at steps 0, through the pipelines; cached in ``OUT/lq_pairs.npz``, keyed
    by the codec's name and weights, the qualities, the count and the split."""
    from cosmic.io.images import load_rgb
    from cosmic.pipelines import DecodePipeline, EncodePipeline, open_scene
    from cosmic.training.data import split_files
    from cosmic.zoo import load_model, weights_identity

    cache, key = out / "lq_pairs.npz", json.dumps([cfg.lq_model, weights_identity(cfg.lq_model), cfg.lq_qualities,
                                                   cfg.lq_images, cfg.split])
    if cache.is_file():
        data = np.load(cache)
        if str(data["key"]) == key:
            return data["hq"], data["lq"]
    files = split_files(cfg.data, cfg.split)
    files = [files[int(i * len(files) / cfg.lq_images)] for i in range(min(cfg.lq_images, len(files)))]
    model = load_model(cfg.lq_model)
    encoder, decoder = EncodePipeline(model.onboard, model.name), DecodePipeline(model, cfg.lq_model)
    hq, lq = [], []
    for i, f in enumerate(files):
        x = load_rgb(f).pixels
        if min(x.shape[:2]) < 256:
            continue
        x = np.ascontiguousarray(x[:256, :256])
        q = cfg.lq_qualities[i % len(cfg.lq_qualities)]
        data = encoder.encode(open_scene(x), quality=q).to_bytes()
        hq.append(x)
        lq.append(decoder(data).pixels)
    np.savez(cache.with_suffix(".partial.npz"), hq=np.stack(hq), lq=np.stack(lq), key=key)
    cache.with_suffix(".partial.npz").replace(cache)
    return np.stack(hq), np.stack(lq)


def _pair_batch(cfg: CodebookConfig, hq: np.ndarray, lq: np.ndarray, step: int):
    """The (original, decoded) crops of ``step``: a pure function of (seed, step); aligned crops
    at multiples of 16 px (the codec's latent grid), random flips and 90-degree rotations."""
    rng = np.random.default_rng([cfg.seed, step])
    xs, ls = [], []
    for _ in range(cfg.batch_size):
        i = int(rng.integers(len(hq)))
        top, left = (int(rng.integers((hq.shape[1] - cfg.crop) // 16 + 1)) * 16 for _ in range(2))
        a, b = hq[i, top : top + cfg.crop, left : left + cfg.crop], lq[i, top : top + cfg.crop, left : left + cfg.crop]
        k = int(rng.integers(4))
        xs.append(np.rot90(a, k))
        ls.append(np.rot90(b, k))
    to = lambda v: torch.from_numpy(np.ascontiguousarray(np.stack(v))).permute(0, 3, 1, 2).float() / 255  # noqa: E731
    return to(xs), to(ls)


def _batches(cfg: CodebookConfig, out: Path, first_step: int):
    """Batches (x, lq) from ``first_step`` on: stage 1 random crops of the training split (lq None,
    stage 1's loader), later stages aligned crops of :func:`lq_pairs`."""
    if cfg.stage == 1:
        from cosmic.training.distributed import DistInfo

        for x in crop_loader(cfg, first_step, DistInfo()):  # one process: DDP is stage 1's and 2's
            yield x, None
        return
    hq, lq = lq_pairs(cfg, out)
    step = first_step
    while True:
        yield _pair_batch(cfg, hq, lq, step)
        step += 1


def train_codebook(cfg: CodebookConfig, resume: bool = True, progress: bool = True) -> Path:
    """Train stage ``cfg.stage`` until ``cfg.steps`` (or ``max_minutes``; resumable from
    ``OUT/stageN/last``; the loss terms in ``OUT/stageN/metrics.csv``); then write the trained
    component into ``OUT/prior`` (its EMA weights) and return that prior directory."""
    _check(cfg)
    out = prepare_run(cfg.out, cfg.threads, cfg.seed)
    run_dir = out / f"stage{cfg.stage}"
    loop = TrainLoop(Cadence.of(cfg, log_every=10, max_minutes=cfg.max_minutes or None), run_dir / "last",
                     progress=progress, desc=f"codebook {cfg.stage}")
    stage = STAGES[cfg.stage](cfg, out, loop)
    fresh = {"step": 0, "history": [], "config": asdict(cfg)}
    state = loop.resume(stage, fresh, cfg.seed) if resume else fresh
    write_config(out / f"stage{cfg.stage}_config.json", asdict(cfg))
    run_dir.mkdir(parents=True, exist_ok=True)
    step = loop.run(stage, _batches(cfg, out, int(state["step"])), state, MetricsLog(run_dir, int(state["step"])))
    trained = stage.ema.module if stage.ema is not None else stage.model
    trained.save_pretrained(out / "prior" / stage.name,
                            extra={"stage": cfg.stage, "steps": step, "wall_s": round(time.time() - loop.started, 1),
                                   "last": state["history"][-1:]})
    _write_prior_config(out / "prior", cfg)
    return out / "prior"


def _write_prior_config(prior: Path, cfg: CodebookConfig) -> None:
    """The prior's ``model_index.json``, updated with this stage's data and the components saved
    so far, written atomically (a run stopped mid-write leaves the old file, never half a file)."""
    from cosmic.codebook.prior import write_prior_index

    write_prior_index(prior, preset=cfg.preset, lq_model=cfg.lq_model, lq_qualities=cfg.lq_qualities,
                      train_split=cfg.split)


@torch.no_grad()
def measure_prior(prior_dir: str | Path, data: str | Path, split: str = "val", limit: int = 42,
                  lq_model: str = "cosmic-small-vr", qualities: tuple = (1.0, 2.0)) -> dict:
    """What the stages learned, on whole images of ``split`` (``limit`` spread over it; evaluation
    only): the VQGAN's reconstruction PSNR (dB, uint8 images) with the codebook's perplexity and
    usage over all their codes, and the predictor's code accuracy on ``lq_model`` decodes at each
    quality (against the original's codes; chance is 1 / num_codes)."""
    from cosmic.codebook.prior import load_prior
    from cosmic.evaluation.harness import eval_files
    from cosmic.evaluation.metrics import psnr
    from cosmic.io.images import load_rgb
    from cosmic.pipelines import DecodePipeline, EncodePipeline, open_scene
    from cosmic.codebook.quantizer import usage_stats
    from cosmic.zoo import load_model

    prior, codec = load_prior(prior_dir), load_model(lq_model)
    encoder, decoder = EncodePipeline(codec.onboard, codec.name), DecodePipeline(codec, lq_model)
    m = prior.multiple
    rec, codes, hits = [], [], {q: [] for q in qualities}
    for f in eval_files(Path(data), split, limit):
        x = load_rgb(f).pixels
        x = np.ascontiguousarray(x[: x.shape[0] // m * m, : x.shape[1] // m * m])
        t = torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255
        out = prior.vqgan(t)
        y = (out["x_rec"].clamp(0, 1) * 255).round().byte()[0].permute(1, 2, 0).numpy()
        rec.append(psnr(x, y))
        codes.append(out["indices"].flatten())
        for q in qualities:
            lq = decoder(encoder.encode(open_scene(x), quality=q).to_bytes()).pixels
            logits, _, _ = prior.predictor(torch.from_numpy(lq).permute(2, 0, 1)[None].float() / 255)
            hits[q].append(float((logits.argmax(1).flatten() == out["indices"].flatten()).float().mean()))
    stats = usage_stats(torch.cat(codes), prior.vqgan.quantizer.num_codes)
    return {"images": len(rec), "recon_psnr": float(np.mean(rec)), **stats,
            "code_accuracy": {f"q{q:g}": float(np.mean(h)) for q, h in hits.items()}}
