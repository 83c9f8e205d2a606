"""The codec names of `cosmic eval --codecs` (:mod:`cosmic.evaluation.specs`)."""

from __future__ import annotations

import pytest

from cosmic.errors import InputError
from cosmic.evaluation.specs import parse_codecs, point_label


def test_a_variable_rate_model_is_one_series_of_its_qualities(tmp_path):
    from cosmic.models.cosmic import Cosmic

    model = Cosmic(N=16, M=16, ground_channels=8, rate_levels=3, gain_span=2.0)
    model.update(force=True)
    model.save_pretrained(tmp_path / "vr" / "final")
    ref = str(tmp_path / "vr" / "final")
    (spec,) = parse_codecs(f"model:{ref}")
    assert spec.name == "vr" and spec.points == [f"{ref}@1", f"{ref}@2", f"{ref}@3"]
    assert point_label(spec.points[1]) == "vr@2"
    (one,) = parse_codecs(f"model:{ref}@2.5")
    assert one.points == [f"{ref}@2.5"]


def test_compensated_variable_rate_model_is_evaluated_at_each_quality(tmp_path):
    """``model-dc:VR`` stands for the model's integer qualities, like ``model:VR``; ``@Q`` points
    and '+'-joined models work too; a model without a stage-2 network is refused in one line."""
    from cosmic.ground.diffusion.noise_predictor import NoisePredictor
    from cosmic.ground.diffusion.sampler import DiffusionCompensator
    from cosmic.models.cosmic import Cosmic

    vr = Cosmic(N=16, M=16, ground_channels=8, rate_levels=3, gain_span=2.0)
    vr.save_pretrained(tmp_path / "vr")
    net = NoisePredictor(M=16, latent_channels=4, injection_hidden=16, quality_conditioning=True, unet={
        "block_out_channels": [32, 32], "layers_per_block": 1, "cross_attention_dim": 32, "attention_head_dim": 8})
    DiffusionCompensator(net, 1.0).save_pretrained(tmp_path / "vr" / "diffusion")
    vr_dir = str(tmp_path / "vr")
    (spec,) = parse_codecs(f"model-dc:{vr_dir}", steps=10)
    assert spec.name == "vr-dc10" and spec.steps == 10
    assert spec.points == [f"{vr_dir}@{q}" for q in (1, 2, 3)]
    (spec,) = parse_codecs(f"model-dc:{vr_dir}@1.5+{vr_dir}@3", steps=4)
    assert spec.points == [f"{vr_dir}@1.5", f"{vr_dir}@3"] and spec.steps == 4
    Cosmic(N=16, M=16, ground_channels=8).save_pretrained(tmp_path / "plain")
    with pytest.raises(InputError, match="no stage-2"):
        parse_codecs(f"model-dc:{tmp_path / 'plain'}")
    with pytest.raises(InputError, match="after 'model-dc:'"):
        parse_codecs("model-dc:")


def test_eval_codec_names_with_prior():
    specs = parse_codecs("jpeg2000+codebook@0.5,cosmic+codebook,jpeg2000")
    assert [(s.name, s.kind, s.prior, s.fidelity) for s in specs] == [
        ("jpeg2000+codebook@0.5", "classical", "codebook-ucm", 0.5),
        ("cosmic+codebook", "cosmic", "codebook-ucm", None), ("jpeg2000", "classical", None, None)]
    assert specs[0].points == specs[2].points and specs[1].points
    trained = parse_codecs("jpeg2000+codebook=runs/cb/prior@0.25,jpeg2000+codebook=/tmp/p9")
    assert [(s.name, s.prior, s.fidelity) for s in trained] == [
        ("jpeg2000+codebook=cb@0.25", "runs/cb/prior", 0.25), ("jpeg2000+codebook=p9", "/tmp/p9", None)]
    for bad in ("cosmic+codebook@x", "cosmic+codebook@2", "cosmic+codebook=runs/p@x"):
        with pytest.raises(InputError, match="fidelity"):
            parse_codecs(bad)


def test_codec_names_give_typed_specs():
    """Classical codecs sweep their default knobs; the learned codecs name their rate points; a
    list of steps and seeds gives one compensated codec per (steps, seed), named ``...-dcN-sK``."""
    from cosmic.evaluation.classical import DEFAULT_KNOBS
    from cosmic.evaluation.specs import ENHANCED_CODECS, CodecSpec

    jpeg, webp = parse_codecs(" jpeg , webp,")
    assert jpeg == CodecSpec("jpeg", "classical", list(DEFAULT_KNOBS["jpeg"])) and webp.kind == "classical"
    assert jpeg.points is not parse_codecs("jpeg")[0].points  # each spec owns its knobs
    specs = parse_codecs("model-dc:cosmic-small-vr", steps=[5, 10], seeds=[0, 1])
    assert [(s.name, s.kind, s.steps, s.seed) for s in specs] == [
        ("cosmic-small-vr-dc5-s0", "cosmic", 5, 0), ("cosmic-small-vr-dc5-s1", "cosmic", 5, 1),
        ("cosmic-small-vr-dc10-s0", "cosmic", 10, 0), ("cosmic-small-vr-dc10-s1", "cosmic", 10, 1)]
    (one,) = parse_codecs("model:cosmic-small-vr@2+cosmic-small-vr@3.5")
    assert one.points == ["cosmic-small-vr@2", "cosmic-small-vr@3.5"] and one.steps == 0
    (baseline,) = parse_codecs("mbt2018-mean:runs/a/final+runs/b/final")
    assert baseline == CodecSpec("mbt2018-mean", "cosmic", ["runs/a/final", "runs/b/final"])
    (untrained,) = parse_codecs("mbt2018-mean")
    assert untrained.points == [] and "cosmic train stage1 --arch mbt2018-mean" in untrained.note
    assert {s.kind for s in parse_codecs(",".join(ENHANCED_CODECS))} == {"enhanced"}
    assert parse_codecs("jpeg2000+codebook@0.5")[0].base_codec == "jpeg2000"


@pytest.mark.parametrize("text, needle", [
    ("jpeg,nope", "unknown codec 'nope'"), ("elic", "unknown codec 'elic'"), (" , ", "no codec given"),
    ("+codebook", "no codec given"), ("model:", "after 'model:'"), ("model:cosmic-small-vr@x", "must be a number"),
    ("jpeg2000+codebook@2", "fidelity"), ("jpeg2000+codebookish", "unknown codec")])
def test_bad_codec_names_are_one_line_input_errors(text, needle):
    with pytest.raises(InputError, match=needle) as err:
        parse_codecs(text)
    assert "\n" not in str(err.value)


def test_parsing_loads_no_model(monkeypatch):
    """Parsing reads configs only: every learned codec's weights are loaded when its spec is run."""
    import safetensors.torch
    import torch

    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded while parsing --codecs")

    for target in ("cosmic.utils.pretrained.load_file", "cosmic.zoo.load_model", "cosmic.zoo.load_compensator",
                   "cosmic.zoo.load_postprocessor", "cosmic.codebook.prior.load_prior"):
        monkeypatch.setattr(target, no_loading)
    monkeypatch.setattr(safetensors.torch, "load_file", no_loading)
    monkeypatch.setattr(torch, "load", no_loading)
    specs = parse_codecs("cosmic,cosmic-dc,model-dc:cosmic-small-vr,cosmic+codebook,jpeg2000+codebook@0.5,"
                         "jpeg2000+enhance,cosmic+enhance-ldm,bmshj2018-hyperprior", steps=[2, 4], seeds=[0, 1])
    assert len(specs) == 1 + 4 + 4 + 1 + 1 + 1 + 4 + 1
