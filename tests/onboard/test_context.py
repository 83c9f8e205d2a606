"""Issue 30 item 2: the context models (cosmic.onboard.context: checkerboard, channel-wise) and
their coding paths."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from helpers import HERE, TINY_MODEL, golden_image

from cosmic.errors import EntropyDecodeError


KINDS = ["checkerboard", "channel"]


def _with_context(trained: bool = True, kind: str = "checkerboard"):
    """The tiny model with a context of ``kind``: zero-initialised, or with seeded random weights
    (a stand-in for a trained one: the later parts' parameters then differ)."""
    from cosmic.models.cosmic import Cosmic
    from cosmic.training.context import with_context

    model = with_context(Cosmic.from_pretrained(TINY_MODEL), kind)
    gen = torch.Generator().manual_seed(0)
    for name, p in model.onboard.context_model.named_parameters():  # every weight seeded: same model in every process
        zero_last = not trained and name.startswith("parameters_net") and p is _last(model.onboard.context_model, name)
        p.data = torch.zeros(p.shape) if zero_last else 0.05 * torch.randn(p.shape, generator=gen)
    model.eval()
    model.update(force=True)
    return model


def _last(context, name: str) -> torch.nn.Parameter:
    """The parameter ``name`` if it belongs to a last (zero-initialised) layer of ``context``'s
    parameter network(s), else None."""
    nets = context.parameters_net
    lasts = [nets[-1]] if isinstance(nets, torch.nn.Sequential) else [net[-1] for net in nets]
    return next((p for layer in lasts for p in layer.parameters() if p is context.get_parameter(name)), None)


def _tiles() -> torch.Tensor:
    """The eight 128-px tiles of a 256x512 golden image, (8, 3, 128, 128) in [0, 1]."""
    import numpy as np

    from cosmic.onboard.scene import iter_tiles

    tiles = np.stack(list(iter_tiles(golden_image(256, 512), 128)))
    return torch.from_numpy(tiles).permute(0, 3, 1, 2).float() / 255.0


@pytest.mark.parametrize("kind", KINDS)
def test_an_untrained_context_changes_no_latent(kind):
    from cosmic.models.cosmic import Cosmic

    plain = Cosmic.from_pretrained(TINY_MODEL).eval()
    ctx = _with_context(trained=False, kind=kind)
    x = _tiles()
    a, b = plain.onboard.compress(x), ctx.onboard.compress(x)
    y_a = plain.onboard.decompress(*a.values())["y_hat"]
    assert torch.equal(y_a, ctx.onboard.decompress(*b.values())["y_hat"])


@pytest.mark.parametrize("kind", KINDS)
def test_a_trained_context_decodes_what_the_training_path_quantises(kind):
    ctx = _with_context(kind=kind)
    x = _tiles()
    coded = ctx.onboard.compress(x)
    y_hat = ctx.onboard.decompress(*coded.values())["y_hat"]
    with torch.no_grad():
        expected = ctx.onboard(x)["y_hat"]
    assert (y_hat - expected).abs().max() < 1e-5
    untrained = _with_context(trained=False, kind=kind).onboard
    assert not torch.equal(y_hat, untrained.decompress(*untrained.compress(x).values())["y_hat"])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("cut", ["short", "long", "flipped", "empty"])
def test_a_corrupt_context_string_is_refused_the_same_way_every_time(cut, kind):
    ctx = _with_context(kind=kind)
    coded = ctx.onboard.compress(_tiles()[:2])
    y0 = coded["strings"][0][0]
    bad = {"short": y0[:-4], "long": y0 + b"\0" * 4, "flipped": bytes([y0[0] ^ 0xFF]) + y0[1:], "empty": b""}[cut]
    outcomes = set()
    for _ in range(3):
        with pytest.raises(EntropyDecodeError) as err:
            ctx.onboard.decompress([[bad, coded["strings"][0][1]], coded["strings"][1]], coded["shape"])
        outcomes.add(str(err.value))
    assert len(outcomes) == 1


_ENCODE = textwrap.dedent(
    """
    import hashlib, sys, torch
    torch.set_num_threads(int(sys.argv[1]))
    sys.path[:0] = [sys.argv[2], sys.argv[2] + "/onboard"]
    from test_context import _tiles, _with_context
    strings = _with_context(kind=sys.argv[3]).onboard.compress(_tiles())["strings"]
    print(hashlib.sha256(b"".join(strings[0] + strings[1])).hexdigest())
    """
)


@pytest.mark.parametrize("kind", KINDS)
def test_context_bitstreams_are_identical_across_threads_and_processes(kind):
    digests = {subprocess.run([sys.executable, "-c", _ENCODE, str(n), str(HERE), kind], check=True,
                              capture_output=True, text=True).stdout.strip() for n in (1, 2)}
    assert len(digests) == 1 and len(next(iter(digests))) == 64


@pytest.mark.parametrize("kind", KINDS)
def test_onnx_runtime_and_pytorch_write_the_same_context_bitstream(kind):
    """The exported graph gives y and z; the context runs in the coder (float64) on either."""
    pytest.importorskip("onnxruntime")
    from cosmic.onboard.export import OnnxEncoder, export_bytes

    codec = _with_context(kind=kind).onboard
    x = _tiles()
    encoder = OnnxEncoder(codec, export_bytes(codec, 128))
    onnx = encoder.compress(x)["strings"]
    assert onnx == codec.code_latents(*encoder.analysis(x))["strings"]  # the coder: PyTorch on both
    y = codec.analysis(x)
    torch_strings = codec.code_latents(y, codec.h_a(codec.hyper_input(y)))["strings"]
    assert sum(a == b for a, b in zip(onnx[0], torch_strings[0])) >= len(onnx[0]) - 1  # y may round a boundary value apart
    assert len(onnx[0]) == x.shape[0]


@pytest.mark.parametrize("kind", KINDS)
def test_a_context_model_round_trips_through_the_pipelines(tmp_path, kind):
    """Saved, loaded by name of directory, coded to a file and decoded by the product's pipelines."""
    import numpy as np

    from cosmic.pipelines import DecodePipeline, EncodePipeline, open_scene

    model_dir = _with_context(kind=kind).save_pretrained(tmp_path / "ctx-model")
    path = tmp_path / "c.cosmic"
    EncodePipeline.from_pretrained(model_dir, runtime="torch").to_file(open_scene(golden_image()), path)
    pixels = DecodePipeline.from_pretrained(model_dir)(path).pixels
    assert pixels.shape == golden_image().shape and pixels.dtype == np.uint8


def test_flops_counts_the_context_and_the_paper_preset_stays_under_budget():
    from cosmic.flops import onboard_cost

    plain = onboard_cost("cosmic", 256, "paper", variable_rate=True)
    for kind in KINDS:
        ctx = onboard_cost("cosmic", 256, "paper", variable_rate=True, context=kind)
        assert plain.macs < ctx.macs <= 2.5e9


@pytest.mark.parametrize("kind", KINDS)
def test_a_context_model_decodes_the_files_its_weights_wrote_without_one(tmp_path, kind):
    """A context trained onto a frozen model (the way the shipped one was made) leaves every other
    weight as it was: the model with it still decodes the old files, to the same pixels, through
    its view without the context; a file written with the context is refused by the old model."""
    import numpy as np

    from cosmic.errors import BitstreamError
    from cosmic.pipelines import DecodePipeline, EncodePipeline, open_scene

    model_dir = _with_context(kind=kind).save_pretrained(tmp_path / "ctx-model")
    old, new = tmp_path / "old.cosmic", tmp_path / "new.cosmic"
    EncodePipeline.from_pretrained(TINY_MODEL, runtime="torch").to_file(open_scene(golden_image()), old)
    EncodePipeline.from_pretrained(model_dir, runtime="torch").to_file(open_scene(golden_image()), new)
    with_context = DecodePipeline.from_pretrained(model_dir)
    plain = DecodePipeline.from_pretrained(TINY_MODEL)
    assert np.array_equal(with_context(old).pixels, plain(old).pixels)
    assert with_context(new).pixels.shape == golden_image().shape
    with pytest.raises(BitstreamError, match="decode it with the model that coded it"):
        plain(new)
    assert with_context.model.onboard.context is not None  # the view did not strip the model itself
