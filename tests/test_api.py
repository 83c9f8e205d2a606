"""The Python API (cosmic.compress / decompress / open): in memory, over the CLI's pipelines."""

from __future__ import annotations

import doctest
import io

import numpy as np
import pytest
from helpers import REPO, TINY_MODEL, golden_image
from PIL import Image

import cosmic
from cosmic.errors import BitstreamError, InputError


def test_module_docstring_examples():
    """The examples in cosmic.__doc__ (and the README's Python API section) run as written."""
    result = doctest.testmod(cosmic, verbose=False)
    assert result.attempted >= 5 and result.failed == 0
    readme = REPO / "README.md"
    result = doctest.testfile(str(readme), module_relative=False, verbose=False)
    assert result.attempted >= 5 and result.failed == 0


def test_bytes_path_and_file_object_agree_with_the_cli(cli, golden_png, tmp_path):
    data = cosmic.compress(golden_image(), model=TINY_MODEL)
    out = tmp_path / "g.cosmic"
    assert cli("compress", golden_png, "-o", out, "-m", TINY_MODEL, "-q")[0] == 0
    assert out.read_bytes() == data
    assert cosmic.compress(golden_png, model=TINY_MODEL) == data
    a = cosmic.decompress(data, model=TINY_MODEL)
    b = cosmic.decompress(out, model=TINY_MODEL)
    c = cosmic.decompress(io.BytesIO(data), model=TINY_MODEL)
    assert a.shape == (200, 300, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and np.array_equal(a, c)
    png = tmp_path / "g.png"
    assert cli("decompress", out, "-o", png, "-m", TINY_MODEL, "-q")[0] == 0
    assert np.array_equal(np.asarray(Image.open(png)), a)
    header = cosmic.open(data)
    assert (header.width, header.height, header.model, header.quality) == (300, 200, "cosmic-tiny-test", None)
    assert cosmic.decompress(data, model=TINY_MODEL, return_georef=True)[1] is None


def test_metadata_and_rate_control(variable_rate_model):
    img = golden_image()
    data = cosmic.compress(img, model=variable_rate_model, quality=2.5, metadata={"gsd": 0.3})
    assert cosmic.open(data).metadata["gsd"] == 0.3 and cosmic.open(data).quality == 2.5
    budget = (len(cosmic.compress(img, model=variable_rate_model, quality=1))
              + len(cosmic.compress(img, model=variable_rate_model, quality=4))) // 2
    fitted = cosmic.compress(img, model=variable_rate_model, max_bytes=budget)
    assert 0.97 * budget <= len(fitted) <= budget
    assert cosmic.decompress(fitted, model=variable_rate_model).shape == (200, 300, 3)


def test_bad_input_raises_cosmic_errors():
    with pytest.raises(BitstreamError, match="bad magic"):
        cosmic.open(b"not a cosmic file at all")
    with pytest.raises(InputError, match="uint8"):
        cosmic.compress(np.zeros((64, 64, 3), np.float32), model=TINY_MODEL)
