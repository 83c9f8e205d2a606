"""Convert saved models of the older layouts into the one save format (:mod:`cosmic.utils.pretrained`).

    .venv/bin/python scripts/migrate_models.py FOLDER...     # in place; each FOLDER and the models inside it

The layouts converted (every stored tensor kept byte for byte, checked before anything old is
removed; a folder already in the one format is left as it is):

* **one file**: a whole model (a ``Cosmic``, a learned baseline) as one ``config.json`` + one
  ``model.safetensors`` (models and trainer checkpoints written before components) ->
  ``model_index.json`` + ``onboard/`` + ``ground/``; the on-board codec's digest (the
  ``bitstream_id`` every ``.cosmic`` file names) is checked unchanged;
* **stage 2 with scheduler.json**: the noise predictor's ``config.json`` (latent scale and target
  in its ``_extra``) + ``model.safetensors`` + ``scheduler.json`` -> the compensator's
  ``model_index.json`` + ``noise_predictor/`` + ``metadata_encoder/`` + ``scheduler/``;
* **a root config.json**: a composite (an LDM-RSIC enhancer, a Code-RSIC codebook prior) whose
  top ``config.json`` names its class beside component subfolders -> ``model_index.json`` (its
  config, one ``[library, class]`` entry per component, its ``_extra``); the component folders
  are not touched.

Models inside a FOLDER (``diffusion/``, a checkpoint's ``ema/``) are converted too. The new
files are written beside the old ones (each atomically, the index last), then the old files
removed: a run stopped half-way is run again. Prints one line per model.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

import cosmic.codebook.prior  # noqa: F401  (registers every saved class)
import cosmic.enhance.model  # noqa: F401
import cosmic.evaluation.classifier  # noqa: F401
import cosmic.models  # noqa: F401
import cosmic.onboard.baselines  # noqa: F401
from cosmic.ground.diffusion.noise_predictor import NoisePredictor
from cosmic.ground.diffusion.sampler import DiffusionCompensator, ddim_scheduler
from cosmic.models.base import TwoSidedCodec
from cosmic.utils.pretrained import (
    COMPONENTS,
    CONFIG_NAME,
    MODEL_INDEX_NAME,
    WEIGHTS_NAME,
    component_entry,
    is_model_dir,
    load_pretrained,
    model_components,
    read_json,
    read_weights,
    write_model_index,
)

SCHEDULER_JSON = "scheduler.json"  # the stage-2 layout before components


def layout(folder: Path) -> str:
    """``components`` (the one format), ``one-file``, ``stage2-scheduler-json``, ``root-config``,
    or ``component`` (one network saved alone: already the one format)."""
    if (folder / MODEL_INDEX_NAME).is_file():
        return "components"
    config = read_json(folder / CONFIG_NAME)
    cls = COMPONENTS.get(config.get("_class_name"))
    if (folder / SCHEDULER_JSON).is_file() or (cls is NoisePredictor and "latent_scale" in config.get("_extra", {})):
        return "stage2-scheduler-json"
    if cls is not None and issubclass(cls, TwoSidedCodec) and (folder / WEIGHTS_NAME).is_file():
        return "one-file"
    if not (folder / WEIGHTS_NAME).is_file() and _subcomponents(folder, config):
        return "root-config"
    return "component"


def _subcomponents(folder: Path, config: dict) -> list[str]:
    """The component subfolders of a root-config composite (those its config lists, else every
    subfolder with a ``config.json``)."""
    names = config.get("components") or [p.name for p in sorted(folder.iterdir()) if (p / CONFIG_NAME).is_file()]
    return [n for n in names if (folder / n / CONFIG_NAME).is_file()]


def same_bytes(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor], what: str) -> None:
    """SystemExit unless both hold the same tensors: names, dtypes, shapes and raw bytes."""
    if before.keys() != after.keys():
        raise SystemExit(f"{what}: tensors differ: {sorted(before.keys() ^ after.keys())[:3]}")
    for k, v in before.items():
        w = after[k]
        if v.dtype != w.dtype or v.shape != w.shape or not torch.equal(
                v.contiguous().reshape(-1).view(torch.uint8), w.contiguous().reshape(-1).view(torch.uint8)):
            raise SystemExit(f"{what}: tensor {k} differs")


def _stored(folder: Path, prefixes: dict[str, str]) -> dict[str, torch.Tensor]:
    """The stored tensors of a composite's component files, each under ``prefixes[component]``."""
    out = {}
    for name, prefix in prefixes.items():
        out.update({prefix + k: v for k, v in load_file(str(folder / name / WEIGHTS_NAME)).items()})
    return out


def _move_in(new: Path, folder: Path, old_files: tuple[str, ...]) -> None:
    """Move ``new``'s component folders into ``folder``, then its index, then remove the old
    layout's ``old_files`` and ``new``."""
    for part in sorted(p for p in new.iterdir() if p.is_dir()):
        shutil.rmtree(folder / part.name, ignore_errors=True)  # what a stopped run left
        os.replace(part, folder / part.name)
    os.replace(new / MODEL_INDEX_NAME, folder / MODEL_INDEX_NAME)
    for name in old_files:
        (folder / name).unlink(missing_ok=True)
    shutil.rmtree(new)


def _scratch(folder: Path) -> Path:
    new = folder / ".migrating"
    shutil.rmtree(new, ignore_errors=True)
    return new


def migrate_one_file(folder: Path) -> str:
    """A whole model in one file -> its components, same stored tensors, same on-board digest."""
    config = read_json(folder / CONFIG_NAME)
    model = COMPONENTS[config["_class_name"]].from_config(config)
    model.load_state_dict(read_weights(folder))
    raw, new = load_file(str(folder / WEIGHTS_NAME)), _scratch(folder)
    model.save_pretrained(new, extra=config.get("_extra"), stored=raw)
    parts = model_components(read_json(new / MODEL_INDEX_NAME))
    same_bytes(raw, _stored(new, {name: name + "." for name in parts}), str(folder))
    back = type(model).from_pretrained(new)
    if back.onboard.digest() != model.onboard.digest():
        raise SystemExit(f"{folder}: the on-board digest would change")
    _move_in(new, folder, (CONFIG_NAME, WEIGHTS_NAME))
    return f"one file -> {', '.join(parts)}; on-board digest {model.onboard.bitstream_id()} unchanged"


def migrate_stage2(folder: Path) -> str:
    """A stage-2 model with ``scheduler.json`` -> the compensator's components."""
    config = read_json(folder / CONFIG_NAME)
    extra = dict(config.get("_extra", {}))
    schedule = read_json(folder / SCHEDULER_JSON) if (folder / SCHEDULER_JSON).is_file() else None
    comp = DiffusionCompensator(NoisePredictor.from_pretrained(folder), extra.pop("latent_scale", 1.0),
                                extra.pop("residual", False), ddim_scheduler(schedule))
    raw, new = load_file(str(folder / WEIGHTS_NAME)), _scratch(folder)
    comp.save_pretrained(new, extra=extra or None, stored=raw)
    same_bytes(raw, _stored(new, {"noise_predictor": "", "metadata_encoder": "metadata_encoder."}), str(folder))
    back = DiffusionCompensator.from_pretrained(new)
    if _schedule(back) != _schedule(comp) or back.latent_scale != comp.latent_scale:
        raise SystemExit(f"{folder}: the schedule or the latent scale would change")
    _move_in(new, folder, (CONFIG_NAME, WEIGHTS_NAME, SCHEDULER_JSON))
    return "stage 2 with scheduler.json -> noise_predictor, metadata_encoder, scheduler"


def _schedule(comp: DiffusionCompensator) -> dict:
    """The scheduler's arguments (without diffusers' bookkeeping entries)."""
    return {k: v for k, v in comp.scheduler.config.items() if not k.startswith("_")}


def migrate_root_config(folder: Path) -> str:
    """A composite with a root ``config.json`` -> ``model_index.json`` (components untouched)."""
    config = read_json(folder / CONFIG_NAME)
    names = _subcomponents(folder, config)
    before = {n: load_file(str(folder / n / WEIGHTS_NAME)) for n in names}
    own = {k: v for k, v in config.items() if not k.startswith("_") and k != "components"}
    write_model_index(folder, config["_class_name"], own, {n: component_entry(folder / n) for n in names},
                      config.get("_extra"))
    (folder / CONFIG_NAME).unlink()
    for n in names:
        same_bytes(before[n], load_file(str(folder / n / WEIGHTS_NAME)), str(folder / n))
    return f"root config.json -> {MODEL_INDEX_NAME} ({', '.join(names)})"


MIGRATIONS = {"one-file": migrate_one_file, "stage2-scheduler-json": migrate_stage2,
              "root-config": migrate_root_config}


def migrate(folder: Path) -> list[str]:
    """Convert ``folder`` and every model folder inside it that is not one of its components;
    one line per model, each converted one loaded back by the one loader
    (:func:`~cosmic.utils.pretrained.load_pretrained`)."""
    kind = layout(folder)
    if kind in MIGRATIONS:
        done = MIGRATIONS[kind](folder)
        load_pretrained(folder)
    else:
        done = f"already in the one format ({kind})"
    lines = [f"{folder}: {done}"]
    parts = set(model_components(read_json(folder / MODEL_INDEX_NAME))) if kind != "component" else set()
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and p.name not in parts):
        if is_model_dir(sub):
            lines += migrate(sub)
    return lines


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    for arg in argv:
        folder = Path(arg)
        if not is_model_dir(folder):
            raise SystemExit(f"{folder}: not a model folder (no {MODEL_INDEX_NAME} or {CONFIG_NAME})")
        for line in migrate(folder):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
