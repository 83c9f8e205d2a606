"""The decode task of a batch (``cosmic decompress DIR_OR_GLOB -o OUTDIR``): ``.cosmic`` -> image,
run by :func:`cosmic.pipelines.batch.run_batch` with :func:`decode_file`.

Each worker process keeps one :class:`~cosmic.pipelines.decode.DecodePipeline` per model (the
one the file names, or ``-m``), one decoder-side prior and one LDM-RSIC enhancer per decoding
model, each loaded the first time a file needs it; every file goes through the same calls as a
one-file ``cosmic decompress`` (:meth:`DecodePipeline.write`, or
:func:`cosmic.enhance.pipeline.enhance_decode` with ``--enhance``), so its output is the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cosmic.ground.deblock import DEFAULT_DEBLOCK

__all__ = ["DecodeOptions", "decode_file"]


@dataclass(frozen=True)
class DecodeOptions:
    """What every file is decoded with (picklable: it travels to the workers)."""

    model: str | None = None
    steps: int = 0
    seed: int = 0
    conceal: bool = False
    deblock: bool = DEFAULT_DEBLOCK
    fmt: str = "png"
    jpeg_quality: int | None = None
    device: str = "cpu"
    precision: str = "fp32"
    dtype: str | None = None  # GeoTIFF outputs: sample type (None: the source's)
    creation_options: tuple[tuple[str, str], ...] = ()  # GeoTIFF outputs: GDAL COG options (--co)
    prior: str | None = None  # a decoder-side prior (shipped name or directory), loaded once per process
    fidelity: float | None = None  # None: the prior's default
    enhance: bool = False  # LDM-RSIC after the decode: the shipped enhancer of the file's model
    enhance_steps: int = 0


#: what this process has loaded: pipelines by (model, device, precision), priors by name,
#: enhancers by the name of the model whose decodes they enhance; each is loaded once
_PIPELINES: dict = {}
_PRIORS: dict = {}
_ENHANCERS: dict = {}


def _prior(options: DecodeOptions):
    if options.prior is None:
        return None
    if options.prior not in _PRIORS:
        from cosmic.codebook.prior import load_prior

        _PRIORS[options.prior] = load_prior(options.prior)
    return _PRIORS[options.prior]


def _pipeline(container, options: DecodeOptions):
    from cosmic.pipelines.decode import DecodePipeline, _shipped_model_for

    ref = options.model or _shipped_model_for(container)
    key = (str(ref), options.device, options.precision)
    if key not in _PIPELINES:
        _PIPELINES[key] = DecodePipeline.from_pretrained(ref, device=options.device, precision=options.precision)
    return _PIPELINES[key]


def _enhancer(pipe):
    """The enhancer of ``pipe``'s decodes (as a one-file ``decompress --enhance`` chooses it)."""
    from cosmic.enhance.pipeline import EnhancePipeline

    name = pipe.model.name
    if name not in _ENHANCERS:
        _ENHANCERS[name] = EnhancePipeline.for_source(name)
    return _ENHANCERS[name]


def decode_file(source: Path, output: Path, options: DecodeOptions) -> str:
    """Decode one file to ``output`` (atomically); the result line's message."""
    from cosmic.io.container import read_container

    container = read_container(source, partial=options.conceal)
    pipe = _pipeline(container, options)
    decode = dict(steps=options.steps, seed=options.seed, conceal=options.conceal, deblock=options.deblock)
    if options.enhance:
        from cosmic.enhance.pipeline import enhance_decode

        bad = enhance_decode(pipe, container, output, _enhancer(pipe), options.enhance_steps, **decode)
    else:
        bad = pipe.write(container, output, options.fmt, options.jpeg_quality, options.dtype,
                         dict(options.creation_options), prior=_prior(options), fidelity=options.fidelity, **decode)
    h = container.header
    note = f", {len(bad)} tile(s) concealed" if bad else ""
    return f"{h.width}x{h.height} px, {container.bpp:.4f} bpp{', enhanced' if options.enhance else ''}{note}"
