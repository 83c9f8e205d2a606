"""The bounds-safe rANS decode (cosmic.onboard.entropy): a decode is a pure function of its bytes."""

from __future__ import annotations

from cosmic.errors import EntropyDecodeError

import numpy as np
import pytest
from helpers import encode_parts, golden_image

from cosmic.io.container import split_payload
from cosmic.onboard.entropy import CheckedDecoder, guard_entropy_coders


@pytest.fixture()
def strings(tiny_model):
    header, payloads = encode_parts(tiny_model.onboard, golden_image(256, 256), tiny_model.name)
    y, z = split_payload(payloads[0])
    return header, y, z


def _outcome(onboard, y, z, latent):
    try:
        return onboard.decompress([[y], [z]], latent)["y_hat"].numpy().tobytes()
    except (ValueError, EntropyDecodeError) as exc:  # refused: the same refusal every time
        return str(exc)


def test_guard_is_installed_once(tiny_model):
    guard_entropy_coders(tiny_model.onboard)
    guard_entropy_coders(tiny_model.onboard)
    coder = tiny_model.onboard.gaussian_conditional.entropy_coder
    assert isinstance(coder, CheckedDecoder) and not isinstance(coder.coder, CheckedDecoder)


def test_valid_strings_decode_unchanged(tiny_model, strings):
    header, y, z = strings
    out = tiny_model.onboard.decompress([[y], [z]], header.latent)["y_hat"]
    assert out.shape[0] == 1 and np.isfinite(out.numpy()).all()


@pytest.mark.parametrize("damage", ["flip", "truncate", "short", "extend"])
def test_corrupt_crc_valid_tile_decodes_one_way_20_times(tiny_model, strings, damage):
    """A corrupt string (as a forged, CRC-valid tile carries it) gives one answer in 20 decodes."""
    header, y, z = strings
    rng = np.random.default_rng(7)
    bad = bytearray(y)
    if damage == "flip":
        for i in rng.integers(0, len(bad), 3):
            bad[int(i)] ^= 0x5A
    elif damage == "truncate":
        bad = bad[: len(bad) // 2]
    elif damage == "short":
        bad = bad[:3]
    else:
        bad += bytes(rng.integers(0, 256, 16, dtype=np.uint8))
    outcomes = {_outcome(tiny_model.onboard, bytes(bad), z, header.latent) for _ in range(20)}
    assert len(outcomes) == 1
    if damage in ("truncate", "short", "extend"):
        assert isinstance(outcomes.pop(), str)  # refused: the string is not a whole message


def test_corrupt_z_string_is_deterministic(tiny_model, strings):
    header, y, z = strings
    bad = bytes(b ^ 0xFF for b in z[:4]) + z[4:]
    assert len({_outcome(tiny_model.onboard, y, bad, header.latent) for _ in range(20)}) == 1


def test_corrupt_tile_of_a_shipped_model_decodes_one_way_20_times():
    """The issue's case: a real model's tile, payload altered behind a valid CRC."""
    from cosmic.onboard.scene import _to_tensor, iter_tiles
    from cosmic.zoo import DEFAULT_MODEL, load_onboard

    codec, _ = load_onboard(DEFAULT_MODEL)
    out = codec.compress(_to_tensor(list(iter_tiles(golden_image(256, 256), 256))), 3.0)
    (y,), (z,) = out["strings"]
    rng = np.random.default_rng(3)
    for cut in (len(y), len(y) // 2):
        bad = bytearray(y[:cut])
        for i in rng.integers(0, cut, 4):
            bad[int(i)] = int(rng.integers(0, 256))
        outcomes = {_outcome(codec, bytes(bad), z, out["shape"]) for _ in range(20)}
        assert len(outcomes) == 1
