from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from helpers import TINY_MODEL, golden_image, perturbed_enhancer, split_folder  # noqa: E402

torch.set_num_threads(1)  # two pytest-xdist workers on two cores


@pytest.fixture(scope="session")
def tiny_model():
    from cosmic.models.cosmic import Cosmic

    return Cosmic.from_pretrained(TINY_MODEL)


@pytest.fixture()
def golden_png(tmp_path) -> Path:
    path = tmp_path / "golden.png"
    Image.fromarray(golden_image()).save(path)
    return path


@pytest.fixture()
def cli(capsys):
    """Run the CLI in-process: returns (exit code, stdout, stderr)."""
    from cosmic.cli import main

    def run(*args: str):
        code = 0
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return run


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code != 0, "expected a non-zero exit"
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got: {err!r}"
    assert "Traceback" not in err
    assert lines[0].startswith("cosmic: error:"), lines[0]
    for n in needles:
        assert n.lower() in lines[0].lower(), f"{n!r} not in {lines[0]!r}"


@pytest.fixture()
def one_line_error():
    return assert_one_line_error


@pytest.fixture()
def tiny_data(tmp_path):
    """A three-image training folder with a SPLITS.json (two train, one val), 128 px."""
    return split_folder(tmp_path / "data", 128, shift=17, axis=1)


@pytest.fixture()
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def variable_rate_model(tmp_path_factory) -> Path:
    """A tiny variable-rate model directory (qualities 1..4). Its gains start 20x larger than
    the random encoder's scale so that, untrained, its rate still grows smoothly with quality."""
    from cosmic.models.registry import build_model

    torch.manual_seed(0)
    model = build_model("cosmic", "small", rate_levels=4, gain_span=2.0, N=16, M=16, ground_channels=8,
                        name="cosmic-vr-test")
    with torch.no_grad():
        model.onboard.gain.log_gain += 3.0
    model.update(force=True)
    path = tmp_path_factory.mktemp("models") / "vr"
    model.save_pretrained(path)
    return path


@pytest.fixture()
def tiny_enhancer(tmp_path):
    """A small LDM-RSIC enhancer of JPEG2000 decodes, untrained but not the identity."""
    from cosmic.enhance.model import build_enhancer

    return perturbed_enhancer(build_enhancer("small")).save_pretrained(tmp_path / "tiny-enhancer")
