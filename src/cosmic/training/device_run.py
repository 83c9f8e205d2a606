"""One call on a lent (or any) CUDA machine continues the stage-1 campaign (issue 31 item 4).

``python -m cosmic.training.device_run OUTDIR`` (what ``scripts/train_on_device.sh`` runs once
the wheels are installed):

1. reads the campaign's own options from the snapshot it starts from (``training/campaign/latest``:
   the ``stage1`` config its trainer recorded in ``model_index.json``), so the run is the
   campaign's recipe, not a new one; only the data paths, the device, the precision, the batch
   size, the schedule's length and the output change;
2. resumes exactly from ``OUTDIR/last`` when an earlier call left one there, and otherwise starts
   from the snapshot's weights (a fresh cosine cycle of ``COSMIC_STEPS`` steps: never from
   scratch);
3. chooses the batch size by measurement when ``COSMIC_BATCH`` is ``auto`` (:func:`probe_batch`);
4. trains for ``COSMIC_MINUTES`` minutes in bf16 (CUDA; fp32 on the CPU, where bf16 autocast is
   slow), then validates the starting and the final weights on the same 42-image subset with
   real bitstreams (:func:`cosmic.training.validation.validate_bitstreams`);
5. writes to ``COSMIC_EXPORT`` (default ``OUTDIR/export``): the float16 EMA weights in the
   component layout (``weights/``, each file well under 16 MB) and ``report.json`` (device, batch
   probe, steps, images per second, validation before and after).

Environment: ``COSMIC_DATA`` (a data pack or folder), ``COSMIC_EXTRA`` (``:``-separated extra
scenes; default: the pack's ``extra/``), ``COSMIC_INIT`` (default ``training/campaign/latest``),
``COSMIC_DEVICE`` (cuda), ``COSMIC_STEPS`` (the cycle's length, 6000), ``COSMIC_MINUTES`` (8),
``COSMIC_BATCH`` (auto), ``COSMIC_VAL_IMAGES`` (42), ``COSMIC_CROP`` (the recipe's crop; smaller only
for data of smaller images).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from cosmic.errors import InputError

if TYPE_CHECKING:
    from cosmic.training.stage1 import Stage1Config

__all__ = ["campaign_config", "probe_batch", "main"]

# Recorded options that describe the machine or the run's files, not the recipe: set anew here.
_PER_RUN = {"data", "extra_data", "out", "init_from", "start_step", "steps", "max_minutes", "device", "precision",
            "bf16", "threads", "batch_size", "pause_at", "workers", "val_every", "checkpoint_every"}


def campaign_config(snapshot: str | os.PathLike, **run) -> "Stage1Config":
    """The snapshot's recorded stage-1 recipe with this run's per-machine settings (``run``)."""
    from cosmic.training.stage1 import Stage1Config
    from cosmic.utils.pretrained import read_model_index

    recorded = read_model_index(snapshot).get("_extra", {}).get("stage1")
    if not recorded:
        raise InputError(f"{snapshot}: no recorded stage-1 options (not a campaign snapshot)")
    known = {f.name for f in dataclasses.fields(Stage1Config)}
    recipe = {k: v for k, v in recorded.items() if k in known and k not in _PER_RUN}
    return Stage1Config(**{**recipe, **run})


def _step_time(cfg, batch: int, steps: int = 3) -> float:
    """Seconds per training step of the campaign's model at ``batch`` (the last of ``steps``)."""
    from cosmic.training.stage1 import Stage1Task, _check, stage1_loop
    from cosmic.training import distributed as ddp

    trial = dataclasses.replace(cfg, batch_size=batch, out=str(Path(cfg.out) / "probe"), ema_decay=0.0)
    trial = _check(trial)
    task = Stage1Task(trial, stage1_loop(trial, ddp.init(trial.device), progress=False))
    task.train_mode()
    x = torch.rand(batch, 3, cfg.crop, cfg.crop, device=task.loop.device)
    for _ in range(steps):
        start = time.perf_counter()
        task.step(x, 0)
        if x.is_cuda:
            torch.cuda.synchronize()
    return time.perf_counter() - start


def probe_batch(cfg, sizes=(8, 16, 32, 64, 128), gain: float = 1.1) -> dict:
    """The batch size with the most images per second, doubling until the memory runs out or a
    doubling gains less than ``gain`` (the issue's "batch size the GPU wants", measured)."""
    rates = {}
    for size in sizes:
        try:
            rates[size] = size / _step_time(cfg, size)
        except torch.OutOfMemoryError:
            break
        finally:
            torch.cuda.empty_cache() if torch.cuda.is_available() else None
        if len(rates) > 1 and rates[size] < gain * rates[sizes[sizes.index(size) - 1]]:
            break
    best = max(rates, key=rates.get)
    return {"chosen": best, "images_per_s": {str(k): round(v, 2) for k, v in rates.items()}}


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _run_config(out: Path) -> "Stage1Config":
    """This call's config: the campaign's recipe, the pack's data, this machine's settings."""
    from cosmic.training.datapack import open_pack

    data = Path(_env("COSMIC_DATA", ".device-kit/ucm-pack.zip"))
    root = open_pack(data) if data.is_file() else None
    extra = os.environ.get("COSMIC_EXTRA")
    extra_files = extra.split(":") if extra else sorted(map(str, (root / "extra").glob("*"))) if root else []
    device, init = _env("COSMIC_DEVICE", "cuda"), _env("COSMIC_INIT", "training/campaign/latest")
    cuda = device.startswith("cuda")
    crop = {"crop": int(os.environ["COSMIC_CROP"])} if os.environ.get("COSMIC_CROP") else {}
    return campaign_config(
        init, data=str(root / "data" if root else data),
        extra_data=extra_files or None, out=str(out), init_from=init,
        steps=int(_env("COSMIC_STEPS", "6000")), max_minutes=float(_env("COSMIC_MINUTES", "8")), device=device,
        precision="bf16" if cuda else "fp32", threads=0 if cuda else 1, batch_size=8, val_every=10**9,
        checkpoint_every=500, val_images=int(_env("COSMIC_VAL_IMAGES", "42")), **crop)


def _validate(cfg, model_dir: Path) -> list[dict]:
    """Real-bitstream figures of ``model_dir`` on the validation subset (the trainer's own)."""
    from cosmic.models.cosmic import Cosmic
    from cosmic.training.stage1 import _val_images, crop_to_stride
    from cosmic.training.validation import validate_bitstreams

    images = [crop_to_stride(img) for img in _val_images(cfg).images]
    return validate_bitstreams(Cosmic.from_pretrained(model_dir), images, [1.0, 3.5, 6.0])


def _export(final: Path, export: Path) -> Path:
    """The EMA weights at float16 in the component layout (as scripts/ship_model.py writes them,
    without its diffusers import: the trainer's wheels do not include diffusers)."""
    from cosmic.models.cosmic import Cosmic
    from cosmic.utils.pretrained import read_model_index, round_parameters

    model = Cosmic.from_pretrained(final)
    round_parameters(model, torch.float16)
    model.update(force=True)
    extra = {**read_model_index(final).get("_extra", {}), "shipped_from": "device_run"}
    model.save_pretrained(export / "weights", extra=extra, dtype=torch.float16)
    return export / "weights"


def main(argv: list[str] | None = None) -> int:
    from cosmic.training.stage1 import train_stage1

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m cosmic.training.device_run OUTDIR")
    out = Path(args[0])
    export = Path(_env("COSMIC_EXPORT", str(out / "export")))
    export.mkdir(parents=True, exist_ok=True)
    cfg = _run_config(out)
    report = {"device": torch.cuda.get_device_name(0) if cfg.device.startswith("cuda") else "cpu",
              "torch": torch.__version__, "init_from": cfg.init_from, "resumed": (out / "last").is_dir()}
    batch = _env("COSMIC_BATCH", "auto")
    report["batch_probe"] = probe_batch(cfg) if batch == "auto" else None
    cfg = dataclasses.replace(cfg, batch_size=report["batch_probe"]["chosen"] if batch == "auto" else int(batch))
    report["before"] = _validate(cfg, Path(cfg.init_from))
    start_step = _trained_step(out)
    started = time.perf_counter()
    final = train_stage1(cfg, progress=False)
    seconds, steps = time.perf_counter() - started, _trained_step(out) - start_step
    report.update(batch_size=cfg.batch_size, crop=cfg.crop, steps=steps, cycle_step=_trained_step(out),
                  cycle_steps=cfg.steps, seconds=round(seconds, 1), steps_per_s=round(steps / seconds, 3),
                  images_per_s=round(steps * cfg.batch_size / seconds, 1))
    report["after"] = _validate(cfg, final)
    report["weights"] = str(_export(final, export))
    (export / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report))
    return 0


def _trained_step(out: Path) -> int:
    """The step of ``out/last`` (0 before the first checkpoint)."""
    state = out / "last" / "trainer.json"
    return int(json.loads(state.read_text()).get("step", 0)) if state.is_file() else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except InputError as exc:
        sys.exit(f"cosmic: error: {exc}")
