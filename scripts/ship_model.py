"""Copy a trained model into the package (``src/cosmic/zoo/weights/NAME``) at half size.

    .venv/bin/python scripts/ship_model.py RUN_DIR/final NAME [--diffusion STAGE2_DIR/final]
    .venv/bin/python scripts/ship_model.py --diffusion STAGE2_DIR/final NAME   # add stage 2 to a shipped NAME
    .venv/bin/python scripts/ship_model.py RUN_DIR/final NAME --diffusion S2/final --out DIR   # an ablation, outside the package
    .venv/bin/python scripts/ship_model.py CLASSIFIER_DIR classifier-ucm   # the scene classifier of `cosmic eval`
    .venv/bin/python scripts/ship_model.py ENHANCE_RUN/final ldm-rsic-cosmic-small   # an LDM-RSIC enhancer
    .venv/bin/python scripts/ship_model.py CODEBOOK_RUN/prior codebook-ucm --default-fidelity 0.5   # a Code-RSIC prior
    .venv/bin/python scripts/ship_model.py --migrate NAME_OR_DIR [--out DIR]   # old one-file layout -> components

Parameters are rounded to float16 and stored as float16 (entropy-coder tables stay exact), the
entropy tables are rebuilt from the rounded parameters, and the model is saved under NAME (the
name written into its bitstreams). The diffusion network is stored at int8 (per-output-channel
kernels, float16 biases and norms; ``--diffusion-dtype float16`` to keep it at half) to keep the
package under 40 MB. Every figure reported for a shipped model is measured on
these rounded weights.

Models are written in the component layout (``model_index.json``, ``onboard/``, ``ground/``,
``diffusion/``: see :mod:`cosmic.models.base`). ``--migrate`` rewrites a model saved in the layout
before components (one ``config.json`` + ``model.safetensors``, stage 2 likewise with
``scheduler.json``) in the component layout, keeping every stored tensor byte for byte (checked
before the old directory is replaced; in place unless ``--out``).
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import torch

from safetensors.torch import load_file

from cosmic.ground.diffusion.sampler import DiffusionCompensator
from cosmic.utils.pretrained import (
    MODEL_INDEX_NAME,
    WEIGHTS_NAME,
    is_model_dir,
    model_components,
    read_model_index,
    round_parameters,
)
from cosmic.zoo import load_compensator, load_model

ZOO = Path(__file__).resolve().parents[1] / "src" / "cosmic" / "zoo" / "weights"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", type=Path, nargs="?", help="stage-1 model; omitted: keep the shipped NAME's")
    ap.add_argument("name", nargs="?")
    ap.add_argument("--diffusion", type=Path, help="a stage-2 model directory to ship with it")
    ap.add_argument("--diffusion-dtype", choices=["int8", "float16"], default="int8")
    ap.add_argument("--out", type=Path, help="write here instead of the package's zoo (e.g. an ablation)")
    ap.add_argument("--migrate", metavar="NAME_OR_DIR", help="rewrite an old-layout model in the component layout")
    ap.add_argument("--default-fidelity", type=float, help="a codebook prior: the fidelity used when none is given")
    args = ap.parse_args()
    if args.diffusion and args.model is not None and args.name is None:  # `--diffusion DIR NAME`
        args.model, args.name = None, str(args.model)
    if args.migrate:
        source = Path(args.migrate) if is_model_dir(args.migrate) else ZOO / args.migrate
        migrate(source, args.out or source)
        return
    if not args.name:
        ap.error("give the NAME to ship the model under")
    out = args.out or ZOO / args.name
    if args.model is None:
        if not args.diffusion or not is_model_dir(out):
            ap.error("without a stage-1 model, give --diffusion and the name of a shipped model")
        ship_diffusion(args.diffusion, out, args.diffusion_dtype)
        return
    from cosmic.evaluation.classifier import SceneClassifier

    kind = read_model_index(args.model).get("_class_name")
    if kind == SceneClassifier.__name__:
        ship_classifier(args.model, out)
        return
    if kind == "Enhancer":
        ship_enhancer(args.model, out, args.name, getattr(torch, args.diffusion_dtype))
        return
    if kind == "CodebookPrior":
        ship_prior(args.model, out, args.default_fidelity)
        return
    model = load_model(args.model)
    model.register_config(name=args.name)
    model.name = args.name
    round_parameters(model)
    model.update(force=True)
    replace_dir(model, out, _extra_of(args.model), torch.float16)
    if args.diffusion:
        ship_diffusion(args.diffusion, out, args.diffusion_dtype)
    else:
        report(out)


def ship_diffusion(source: Path, out: Path, dtype_name: str) -> None:
    """Round a stage-2 model to ``dtype_name`` and store it as ``out/diffusion``."""
    # a stage-2 model directory, or a model directory with one in diffusion/
    comp = load_compensator(source) if is_model_dir(source / "diffusion") else DiffusionCompensator.from_pretrained(
        source)
    dtype = getattr(torch, dtype_name)
    round_parameters(comp.net, dtype)
    replace_dir(comp, out / "diffusion", {"shipped_from": _portable(str(source))}, dtype)
    report(out)


def ship_classifier(source: Path, out: Path) -> None:
    """The scene classifier (top-1 / FD-UCM in ``cosmic eval``) at float16."""
    from cosmic.evaluation.classifier import SceneClassifier

    model = SceneClassifier.from_pretrained(source)
    round_parameters(model)
    replace_dir(model, out, _extra_of(source), torch.float16)
    report(out)


def ship_enhancer(source: Path, out: Path, name: str, ldm_dtype: torch.dtype = torch.int8) -> None:
    """An LDM-RSIC enhancer (``cosmic train enhance``'s ``final``) at float16 under ``name``, its
    LDM (if any) at ``ldm_dtype`` (``--diffusion-dtype``, like the stage-2 network); its
    ``source`` (the codec whose decodes it enhances) is kept, which is how it is found."""
    from cosmic.enhance.model import Enhancer

    enhancer = Enhancer.from_pretrained(source)
    enhancer.name, enhancer.extra = name, _extra_of(source)
    dtypes = {"ldm": ldm_dtype}
    for key, module in enhancer.components().items():
        round_parameters(module, dtypes.get(key, torch.float16))
    if out.exists():
        shutil.rmtree(out)
    enhancer.save_pretrained(out, dtype=torch.float16, dtypes=dtypes)
    report(out)


def ship_prior(source: Path, out: Path, default_fidelity: float | None) -> None:
    """A Code-RSIC codebook prior (``cosmic train codebook``'s ``OUT/prior``) at float16 (the
    codebook's buffers keep their dtype), with the fidelity it is used at by default."""
    from cosmic.codebook.prior import CodebookPrior, check_fidelity

    prior = CodebookPrior.from_pretrained(source)
    prior.info["shipped_from"] = _portable(str(source))
    if default_fidelity is not None:
        prior.info["default_fidelity"] = check_fidelity(default_fidelity)
    for name in ("vqgan", "predictor", "hpin"):
        if getattr(prior, name) is not None:
            round_parameters(getattr(prior, name))
    if out.exists():
        shutil.rmtree(out)
    prior.save_pretrained(out, dtype=torch.float16)
    report(out)


def _portable(value):
    """``value`` with every absolute path cut to its last two parts (nothing shipped names a
    path on the machine that trained it)."""
    if isinstance(value, dict):
        return {k: _portable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_portable(v) for v in value]
    if isinstance(value, str) and value.startswith("/"):
        return "/".join(Path(value).parts[-2:])
    return value


def _extra_of(source: Path) -> dict:
    """The source's extra config, noting where the shipped copy came from (no absolute paths)."""
    return _portable({**read_model_index(source).get("_extra", {}), "shipped_from": str(source)})


def migrate(source: Path, out: Path) -> None:
    """Rewrite ``source`` (the layout before components) as ``out`` in the component layout with
    the same stored tensors (float16 / int8 as they are), checked equal before ``out`` is replaced."""
    if (source / MODEL_INDEX_NAME).is_file():
        raise SystemExit(f"{source} is already in the component layout")
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model = load_model(source)
    model.save_pretrained(tmp, extra=_portable(read_model_index(source).get("_extra")),
                          stored=load_file(str(source / WEIGHTS_NAME)))
    _check_stored(source, tmp, {name: name + "." for name in model_components(read_model_index(tmp))})
    if is_model_dir(source / "diffusion"):
        comp = load_compensator(source)
        extra = {k: v for k, v in read_model_index(source / "diffusion").get("_extra", {}).items()
                 if k not in ("latent_scale", "residual")}
        comp.save_pretrained(tmp / "diffusion", extra=_portable(extra),
                             stored=load_file(str(source / "diffusion" / WEIGHTS_NAME)))
        _check_stored(source / "diffusion", tmp / "diffusion",
                      {"noise_predictor": "", "metadata_encoder": "metadata_encoder."})
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    report(out)


def _check_stored(old: Path, new: Path, prefixes: dict[str, str]) -> None:
    """Every tensor of ``old``'s one file is in ``new``'s component files (under ``prefixes``:
    component -> prefix of its tensors in the old file), same dtype, shape and bytes."""
    before = load_file(str(old / WEIGHTS_NAME))
    after = {}
    for name, prefix in prefixes.items():
        after.update({prefix + k: v for k, v in load_file(str(new / name / WEIGHTS_NAME)).items()})
    if before.keys() != after.keys():
        raise SystemExit(f"{new}: tensors differ from {old}'s: {sorted(before.keys() ^ after.keys())[:3]}")
    for k, v in before.items():
        w = after[k]
        same = v.dtype == w.dtype and v.shape == w.shape
        if not same or not torch.equal(v.reshape(-1).view(torch.uint8), w.reshape(-1).view(torch.uint8)):
            raise SystemExit(f"{new}: tensor {k} differs from {old}'s")
    print(f"{new}: {len(before)} tensors byte-identical to {old}'s")


def replace_dir(model, out: Path, extra: dict, dtype: torch.dtype) -> None:
    """Save ``model`` as ``out``, replacing whatever was there."""
    if out.exists():
        shutil.rmtree(out)
    model.save_pretrained(out, extra=extra, dtype=dtype)


def report(out: Path) -> None:
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"{out}: {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
