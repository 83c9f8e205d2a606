"""Copy a trained model into the package (``src/cosmic/zoo/weights/NAME``) at half size.

    .venv/bin/python scripts/ship_model.py RUN_DIR/final NAME [--diffusion STAGE2_DIR/final]
    .venv/bin/python scripts/ship_model.py --diffusion STAGE2_DIR/final NAME   # add stage 2 to a shipped NAME
    .venv/bin/python scripts/ship_model.py RUN_DIR/final NAME --diffusion S2/final --out DIR   # an ablation, outside the package
    .venv/bin/python scripts/ship_model.py CLASSIFIER_DIR classifier-ucm   # the scene classifier of `cosmic eval`
    .venv/bin/python scripts/ship_model.py ENHANCE_RUN/final ldm-rsic-cosmic-small   # an LDM-RSIC enhancer
    .venv/bin/python scripts/ship_model.py CODEBOOK_RUN/prior codebook-ucm --default-fidelity 0.5   # a Code-RSIC prior

Parameters are rounded to float16 and stored as float16 (entropy-coder tables stay exact), the
entropy tables are rebuilt from the rounded parameters, and the model is saved under NAME (the
name written into its bitstreams). The diffusion network is stored at int8 (per-output-channel
kernels, float16 biases and norms; ``--diffusion-dtype float16`` to keep it at half) to keep the
package under 40 MB. Every figure reported for a shipped model is measured on
these rounded weights.

Models are written in the one save format (:mod:`cosmic.utils.pretrained`; a COSMIC model:
``model_index.json``, ``onboard/``, ``ground/``, ``diffusion/``, see :mod:`cosmic.models.base`),
each into a temporary folder beside its place, then moved in (the old one removed). A model of
an older layout is converted first by ``scripts/migrate_models.py``.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import torch

from cosmic.ground.diffusion.sampler import DiffusionCompensator
from cosmic.utils.pretrained import (
    is_model_dir,
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
    ap.add_argument("--default-fidelity", type=float, help="a codebook prior: the fidelity used when none is given")
    args = ap.parse_args()
    if args.diffusion and args.model is not None and args.name is None:  # `--diffusion DIR NAME`
        args.model, args.name = None, str(args.model)
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
    extra = _extra_of(args.model)
    replace_dir(lambda tmp: model.save_pretrained(tmp, extra=extra, dtype=torch.float16), out)
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
    extra = {"shipped_from": _portable(str(source))}
    replace_dir(lambda tmp: comp.save_pretrained(tmp, extra=extra, dtype=dtype), out / "diffusion")
    report(out)


def ship_classifier(source: Path, out: Path) -> None:
    """The scene classifier (top-1 / FD-UCM in ``cosmic eval``) at float16."""
    from cosmic.evaluation.classifier import SceneClassifier

    model = SceneClassifier.from_pretrained(source)
    round_parameters(model)
    extra = _extra_of(source)
    replace_dir(lambda tmp: model.save_pretrained(tmp, extra=extra, dtype=torch.float16), out)
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
    replace_dir(lambda tmp: enhancer.save_pretrained(tmp, dtype=torch.float16, dtypes=dtypes), out)
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
    replace_dir(lambda tmp: prior.save_pretrained(tmp, dtype=torch.float16), out)
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


def replace_dir(save, out: Path) -> None:
    """Save a model as ``out``, replacing whatever was there: ``save(folder)`` writes it into a
    temporary folder beside ``out``, which then takes its place."""
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    save(tmp)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)


def report(out: Path) -> None:
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"{out}: {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
