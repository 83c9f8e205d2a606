"""Copy a trained model into the package (``src/cosmic/zoo/weights/NAME``) at half size.

    .venv/bin/python scripts/ship_model.py RUN_DIR/final NAME [--diffusion STAGE2_DIR/final]
    .venv/bin/python scripts/ship_model.py --diffusion STAGE2_DIR/final NAME   # add stage 2 to a shipped NAME
    .venv/bin/python scripts/ship_model.py RUN_DIR/final NAME --diffusion S2/final --out DIR   # an ablation, outside the package
    .venv/bin/python scripts/ship_model.py CLASSIFIER_DIR classifier-ucm   # the scene classifier of `cosmic eval`

Parameters are rounded to float16 and stored as float16 (entropy-coder tables stay exact), the
entropy tables are rebuilt from the rounded parameters, and the model is saved under NAME (the
name written into its bitstreams). The diffusion network is stored at int8 (per-output-channel
kernels, float16 biases and norms; ``--diffusion-dtype float16`` to keep it at half) to keep the
package under 40 MB. Every figure reported for a shipped model is measured on
these rounded weights.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch

from cosmic.ground.diffusion.sampler import DiffusionCompensator
from cosmic.models.cosmic import Cosmic
from cosmic.utils.pretrained import ConfigMixin, round_parameters

ZOO = Path(__file__).resolve().parents[1] / "src" / "cosmic" / "zoo" / "weights"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", type=Path, nargs="?", help="stage-1 model; omitted: keep the shipped NAME's")
    ap.add_argument("name")
    ap.add_argument("--diffusion", type=Path, help="a stage-2 model directory to ship with it")
    ap.add_argument("--diffusion-dtype", choices=["int8", "float16"], default="int8")
    ap.add_argument("--out", type=Path, help="write here instead of the package's zoo (e.g. an ablation)")
    args = ap.parse_args()
    out = args.out or ZOO / args.name
    if args.model is None:
        if not args.diffusion or not (out / "config.json").is_file():
            ap.error("without a stage-1 model, give --diffusion and the name of a shipped model")
        ship_diffusion(args.diffusion, out, args.diffusion_dtype)
        return
    if ConfigMixin.read_config(args.model).get("_class_name") == "SceneClassifier":
        ship_classifier(args.model, out)
        return
    model = Cosmic.from_pretrained(args.model)
    model.config["name"] = args.name
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
    comp = DiffusionCompensator.from_pretrained(source)
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
    return _portable({**ConfigMixin.read_config(source).get("_extra", {}), "shipped_from": str(source)})


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
