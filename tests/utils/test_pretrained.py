"""The one save format (cosmic.utils.pretrained): every shipped model is a composite
(model_index.json + component folders) or a component (config.json + model.safetensors), all
loaded by load_pretrained through the registry; writes are atomic (no temporary file is left)."""

from __future__ import annotations

import json

import pytest
from helpers import REPO, TINY_MODEL

import cosmic.codebook.prior  # noqa: F401  (registers every saved class)
import cosmic.enhance.model  # noqa: F401
from cosmic.evaluation.classifier import SceneClassifier
from cosmic.utils.pretrained import (
    CONFIG_NAME,
    MODEL_INDEX_NAME,
    WEIGHTS_NAME,
    load_pretrained,
    model_components,
    read_composite,
    write_json,
)
from cosmic.zoo import load_model, shipped_models

WEIGHTS = REPO / "src" / "cosmic" / "zoo" / "weights"


def _models():
    """Every shipped model folder, nested composites (diffusion/) included."""
    roots = [WEIGHTS / name for name in shipped_models()] + [REPO / "training" / "campaign" / "latest", TINY_MODEL]
    return roots + [r / "diffusion" for r in roots if (r / "diffusion").is_dir()]


@pytest.mark.parametrize("folder", _models(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_shipped_model_is_in_the_one_format(folder):
    if (folder / MODEL_INDEX_NAME).is_file():
        index = json.loads((folder / MODEL_INDEX_NAME).read_text())
        assert not (folder / CONFIG_NAME).exists() and not (folder / WEIGHTS_NAME).exists()
        parts = model_components(index)
        assert parts and all(lib in ("cosmic", "diffusers") for lib, _ in parts.values())
        for name, (lib, _) in parts.items():
            assert (folder / name / (CONFIG_NAME if lib == "cosmic" else "scheduler_config.json")).is_file()
            assert lib != "cosmic" or (folder / name / WEIGHTS_NAME).is_file()
    else:
        assert json.loads((folder / CONFIG_NAME).read_text())["_class_name"] == "SceneClassifier"
        assert (folder / WEIGHTS_NAME).is_file()
    assert not list(folder.rglob("*.tmp")) and not (folder / "scheduler.json").exists()


def test_load_pretrained_dispatches_on_the_class_name():
    assert type(load_pretrained(WEIGHTS / "classifier-ucm")) is SceneClassifier
    assert type(load_pretrained(WEIGHTS / "codebook-ucm")).__name__ == "CodebookPrior"
    assert type(load_pretrained(WEIGHTS / "ldm-rsic-cosmic-small")).__name__ == "Enhancer"
    assert type(load_pretrained(TINY_MODEL)).__name__ == "Cosmic"
    with pytest.raises(ValueError, match="not a SceneClassifier"):
        read_composite(TINY_MODEL, "SceneClassifier")


def test_saving_over_a_model_leaves_no_temporary_file(tmp_path):
    model = load_model(TINY_MODEL)
    for _ in range(2):
        model.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").rglob("*")) == sorted(
        ["model_index.json", "onboard", "ground"] + [CONFIG_NAME, WEIGHTS_NAME] * 2)
    write_json(tmp_path / "x.json", {"b": 1, "a": 2})
    assert (tmp_path / "x.json").read_text() == '{\n  "a": 2,\n  "b": 1\n}\n' and not (tmp_path / "x.json.tmp").exists()
