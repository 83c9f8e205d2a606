"""Runners: a :class:`~cosmic.evaluation.specs.CodecSpec` run on one image at a time.

Every runner's ``code(point, pixels, metadata, key)`` returns a :class:`Coded`: the point's label,
its bpp from the real encoded bytes (a whole ``.cosmic`` file for COSMIC, a raw codestream for the
classical codecs), the decoded RGB and the encode and decode seconds. A runner loads its models
(and a ground post-processor: the codebook prior, the LDM-RSIC enhancer) once, when it is made by
:func:`make_runner`; post-processors are called through their one interface
(:mod:`cosmic.ground.postprocess`).
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import replace
from typing import NamedTuple

import numpy as np

from cosmic.evaluation.classical import encode
from cosmic.evaluation.specs import CodecSpec, point_label, source_of, split_point
from cosmic.ground.postprocess import PostContext

__all__ = ["Coded", "ClassicalRunner", "CosmicRunner", "EnhanceRunner", "RUNNERS", "make_runner", "load_prior_once"]


class Coded(NamedTuple):
    """One image coded at one rate point."""

    label: str  # the rate point as the reports name it
    bpp: float  # from the encoded bytes
    decoded: np.ndarray  # (H, W, 3) uint8, after any ground-side enhancement
    encode_s: float
    decode_s: float  # NaN: not measured apart from the encode (a classical codec without a prior)


@functools.lru_cache(maxsize=4)
def load_prior_once(ref: str):
    """The decoder-side prior ``ref``, loaded once per process."""
    from cosmic.codebook.prior import load_prior

    return load_prior(ref)


class ClassicalRunner:
    """Codes with a classical codec at a knob (the decode is part of the encode's time), then
    applies the spec's codebook prior, if any (the prior's time is the decode time measured)."""

    def __init__(self, spec: CodecSpec, seed: int = 0, encoded: dict | None = None):
        self.codec, self.context = spec.base_codec, PostContext(seed=seed, fidelity=spec.fidelity)
        self.prior = load_prior_once(spec.prior) if spec.prior else None

    def code(self, knob, pixels: np.ndarray, metadata=None, key: str | None = None) -> Coded:
        """``pixels`` coded at ``knob``; ``metadata`` and ``key`` are not used."""
        t0 = time.perf_counter()
        enc = encode(self.codec, pixels, knob)
        t_enc, t0 = time.perf_counter() - t0, time.perf_counter()
        if self.prior is None:
            return Coded(f"{knob:g}", enc.bpp, enc.decoded, t_enc, math.nan)
        decoded = self.prior(enc.decoded, replace(self.context, bpp=enc.bpp))
        return Coded(f"{knob:g}", enc.bpp, decoded, t_enc, time.perf_counter() - t0)


class CosmicRunner:
    """Encodes and decodes real ``.cosmic`` files (in memory) through the pipelines, per
    rate-point model (loaded once)."""

    def __init__(self, spec: CodecSpec, seed: int = 0, encoded: dict | None = None):
        from cosmic.pipelines import DecodePipeline, EncodePipeline
        from cosmic.zoo import load_model

        points = {ref: split_point(ref) for ref in spec.points}  # ref -> (model, quality)
        loaded = {path: load_model(path) for path, _ in points.values()}  # each model once
        self.qualities = {ref: quality for ref, (_, quality) in points.items()}
        self.encoders = {ref: EncodePipeline(loaded[p].onboard, loaded[p].name) for ref, (p, _) in points.items()}
        self.decoders = {ref: DecodePipeline(loaded[p], p) for ref, (p, _) in points.items()}
        self.steps, self.seed = spec.steps, (seed if spec.seed is None else spec.seed)
        self.post = load_prior_once(spec.prior) if spec.prior else None
        self.context = PostContext(seed=self.seed, fidelity=spec.fidelity)  # the file fills in the rest
        # (model, image) -> (file bytes, encode seconds): shared by the runners of one evaluation,
        # so decoding one file several ways (steps 0, 5, 10, ...) encodes it once
        self.encoded = {} if encoded is None else encoded

    def _encode(self, ref: str, pixels: np.ndarray, metadata, key: str | None) -> tuple[bytes, float]:
        """The file of ``pixels`` coded by ``ref`` and its encode seconds, from the shared cache
        when this image (``key``) was coded by that model already."""
        from cosmic.pipelines import open_scene

        cached = self.encoded.get((ref, key)) if key is not None else None
        if cached is not None:
            return cached
        encoder = self.encoders[ref]
        quality = self.qualities[ref]
        coded = encoder.encode(open_scene(pixels, metadata=metadata),
                               quality=encoder.default_quality if quality is None else quality)
        data = (coded.to_bytes(), coded.seconds)
        if key is not None:
            for stale in [k for k in self.encoded if k[1] != key]:  # keep this image's only
                del self.encoded[stale]
            self.encoded[(ref, key)] = data
        return data

    def run(self, ref: str, pixels: np.ndarray, metadata, key: str | None = None
            ) -> tuple[float, np.ndarray, float, float]:
        """(bpp, decoded pixels, encode seconds, decode seconds) of ``pixels`` coded by ``ref``."""
        data, t_enc = self._encode(ref, pixels, metadata, key)
        t0 = time.perf_counter()
        decoder = self.decoders[ref]
        decoded = decoder(data, steps=self.steps, seed=self.seed, post=self.post, context=self.context).pixels
        t_dec = time.perf_counter() - t0
        h, w = pixels.shape[:2]
        return len(data) * 8.0 / (h * w), decoded, t_enc, t_dec

    def code(self, ref: str, pixels: np.ndarray, metadata=None, key: str | None = None) -> Coded:
        """:meth:`run`, labelled with the model's short name."""
        return Coded(point_label(ref), *self.run(ref, pixels, metadata, key))


class EnhanceRunner:
    """Codes an image with the source codec and enhances the decode (the enhancer loaded once).
    A COSMIC source codes real files through a steps-0 ``CosmicRunner``, sharing ``encoded``
    (the evaluation's encode cache) with the plain ``cosmic`` codec."""

    def __init__(self, spec: CodecSpec, seed: int = 0, encoded: dict | None = None):
        from cosmic.enhance.pipeline import EnhancePipeline

        self.source = source_of(spec.name)
        self.pipe = EnhancePipeline.for_source(self.source)
        self.steps, self.seed = spec.steps, (seed if spec.seed is None else spec.seed)
        source = CodecSpec(self.source, "classical", spec.points) if self.source == "jpeg2000" else \
            CodecSpec(spec.name, "cosmic", spec.points)
        self.coder = make_runner(source, seed, encoded)

    def code(self, knob, pixels: np.ndarray, metadata=None, key: str | None = None) -> Coded:
        """The source codec's decode at ``knob``, enhanced; the decode time includes the enhancement."""
        coded = self.coder.code(knob, pixels, metadata, key)
        t0 = time.perf_counter()
        y = self.pipe(coded.decoded, PostContext(bpp=coded.bpp, steps=self.steps, seed=self.seed))
        decode_s = coded.decode_s if math.isfinite(coded.decode_s) else 0.0  # a classical decode: in its encode
        return coded._replace(decoded=y, decode_s=decode_s + time.perf_counter() - t0)


#: the runner of each kind of spec
RUNNERS = {"classical": ClassicalRunner, "cosmic": CosmicRunner, "enhanced": EnhanceRunner}


def make_runner(spec: CodecSpec, seed: int = 0, encoded: dict | None = None):
    """The runner of ``spec`` (its models loaded); ``seed`` is the evaluation's diffusion seed and
    ``encoded`` the encode cache the runners of one evaluation share."""
    return RUNNERS[spec.kind](spec, seed, encoded)
