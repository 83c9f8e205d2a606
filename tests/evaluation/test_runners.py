"""Runners (:mod:`cosmic.evaluation.runners`): each codec spec coded and decoded, one image at a time."""

from __future__ import annotations

import numpy as np
from helpers import TINY_MODEL, golden_image
from PIL import Image

from cosmic.evaluation.harness import evaluate
from cosmic.evaluation.runners import CosmicRunner
from cosmic.evaluation.specs import CodecSpec, parse_codecs


def test_one_encode_serves_every_decode_of_an_image(tmp_path, monkeypatch):
    """A steps sweep decodes one file several ways: it is encoded once per (model, image)."""
    from cosmic.metadata import SensorMetadata
    from cosmic.pipelines import EncodePipeline

    calls = []
    real = EncodePipeline.encode
    monkeypatch.setattr(EncodePipeline, "encode", lambda *a, **k: calls.append(1) or real(*a, **k))
    shared: dict = {}
    spec = CodecSpec("tiny", "cosmic", [str(TINY_MODEL)])
    a, b = (CosmicRunner(spec, encoded=shared) for _ in range(2))
    x = golden_image(128, 128)
    first = a.run(str(TINY_MODEL), x, SensorMetadata(), key="im0")
    second = b.run(str(TINY_MODEL), x, SensorMetadata(), key="im0")
    assert len(calls) == 1 and first[0] == second[0] and np.array_equal(first[1], second[1])
    b.run(str(TINY_MODEL), np.roll(x, 5, axis=1), SensorMetadata(), key="im1")
    assert len(calls) == 2 and list(shared) == [(str(TINY_MODEL), "im1")]  # the old image's file dropped


def test_eval_codec_enhances_jpeg2000_at_the_same_bpp(monkeypatch, tmp_path, tiny_enhancer):
    monkeypatch.setattr("cosmic.zoo.shipped_models", lambda: [str(tiny_enhancer)])
    specs = parse_codecs("jpeg2000,jpeg2000+enhance,cosmic+enhance")
    assert [s.name for s in specs] == ["jpeg2000", "jpeg2000+enhance", "cosmic+enhance"]
    assert specs[2].note and not specs[2].points
    for s in specs[:2]:
        s.points = [96.0]
    Image.fromarray(golden_image(64, 64)).save(tmp_path / "a.png")
    rows = evaluate([tmp_path / "a.png"], specs[:2], progress=False)
    plain, enhanced = rows
    assert enhanced["codec"] == "jpeg2000+enhance" and enhanced["bpp"] == plain["bpp"]
    assert enhanced["psnr"] != plain["psnr"]


def test_every_kind_of_spec_gets_a_runner_that_codes_real_bytes():
    """`make_runner` picks the runner by the spec's kind; a classical point is labelled by its knob,
    its bpp is the codestream's, and its decode time is part of the encode's (NaN)."""
    import math

    from cosmic.evaluation.classical import encode
    from cosmic.evaluation.runners import RUNNERS, ClassicalRunner, Coded, EnhanceRunner, make_runner

    x = golden_image(64, 64)
    runner = make_runner(CodecSpec("jpeg", "classical", [35]))
    assert isinstance(runner, ClassicalRunner)
    coded = runner.code(35, x)
    assert isinstance(coded, Coded) and coded.label == "35" and coded.bpp == encode("jpeg", x, 35).bpp
    assert math.isnan(coded.decode_s) and coded.decoded.shape == x.shape
    tiny = make_runner(CodecSpec("tiny", "cosmic", [str(TINY_MODEL)]))
    assert isinstance(tiny, CosmicRunner) and tiny.code(str(TINY_MODEL), x).label == TINY_MODEL.name
    assert RUNNERS["enhanced"] is EnhanceRunner  # run by the test above


def test_a_codebook_prior_runs_after_either_decode():
    """``CODEC+codebook@W``: the prior's output at fidelity W replaces the codec's decode, at the
    same bpp and label, for a classical codec and for COSMIC's real files alike."""
    from cosmic.evaluation.runners import load_prior_once, make_runner
    from cosmic.metadata import SensorMetadata

    x = golden_image(64, 64)
    prior = load_prior_once("codebook-ucm")
    for name in ("jpeg", f"model:{TINY_MODEL}"):
        plain, with_prior = (parse_codecs(f"{name}{suffix}")[0] for suffix in ("", "+codebook@0.5"))
        point = plain.points[-1]
        a, b = (make_runner(s).code(point, x, SensorMetadata()) for s in (plain, with_prior))
        assert (b.bpp, b.label) == (a.bpp, a.label) and not np.array_equal(b.decoded, a.decoded)
        assert np.array_equal(b.decoded, prior.enhance(a.decoded, 0.5))
