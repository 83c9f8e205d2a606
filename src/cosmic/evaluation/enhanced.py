"""``cosmic eval`` codecs that enhance a source codec's decodes with LDM-RSIC, so the same
tables (and BD-rates against JPEG2000) compare them with the source codec:

- ``jpeg2000+enhance``: JPEG2000 at :data:`~cosmic.evaluation.classical.DEFAULT_KNOBS`, each
  decode enhanced with the deterministic prior (``steps`` 0, "w/o LDM");
- ``jpeg2000+enhance-ldm``: the same with the prior sampled by the LDM (the evaluation's
  ``--steps``, one codec per step count and seed, named like ``cosmic-dc``'s);
- ``cosmic+enhance`` / ``cosmic+enhance-ldm``: the shipped default model's real files at the
  rate points of the ``cosmic`` codec (its integer qualities), decoded at steps 0 through the
  decode pipeline, then enhanced by the shipped enhancer whose source is that model
  (unavailable, with a note, when none is shipped).

The bpp is the source codec's real file's: the enhancement is ground-side and costs no bits.
"""

from __future__ import annotations

import time

import numpy as np

__all__ = ["ENHANCED_CODECS", "enhanced_specs", "EnhanceRunner", "source_of"]

ENHANCED_CODECS = ("jpeg2000+enhance", "jpeg2000+enhance-ldm", "cosmic+enhance", "cosmic+enhance-ldm")


def source_of(token: str) -> str:
    """The enhancer source of an enhanced codec's name: ``jpeg2000`` or the default model's name."""
    from cosmic.zoo import DEFAULT_MODEL

    source = token.split("+")[0]
    return DEFAULT_MODEL if source == "cosmic" else source


def enhanced_specs(token: str, step_list: list[int], seeds: list[int] | None) -> list:
    """The :class:`~cosmic.evaluation.harness.CodecSpec` s of an enhanced codec token."""
    from cosmic.enhance.pipeline import shipped_enhancer
    from cosmic.evaluation.classical import DEFAULT_KNOBS
    from cosmic.evaluation.harness import CodecSpec, cosmic_models, dc_variants

    source = source_of(token)
    missing = shipped_enhancer(source) is None
    note = f"no enhancer is trained for {source} decodes yet" if missing else None
    knobs = list(DEFAULT_KNOBS["jpeg2000"]) if source == "jpeg2000" else cosmic_models()
    knobs = [] if missing else knobs
    if not token.endswith("-ldm"):
        return [CodecSpec(token, "enhanced", knobs, steps=0, note=note)]
    return [CodecSpec(name, "enhanced", knobs, steps=n, seed=s, note=note)
            for name, n, s in dc_variants(token, step_list, seeds, True)]


class EnhanceRunner:
    """Codes an image with the source codec and enhances the decode (the enhancer loaded once).
    A COSMIC source codes real files through a steps-0 ``CosmicRunner``, sharing ``encoded``
    (the evaluation's encode cache) with the plain ``cosmic`` codec."""

    def __init__(self, spec, seed: int = 0, encoded: dict | None = None):
        from cosmic.enhance.pipeline import EnhancePipeline
        from cosmic.evaluation.harness import CodecSpec, CosmicRunner

        self.source = source_of(spec.name)
        self.pipe = EnhancePipeline.for_source(self.source)
        self.steps, self.seed = spec.steps, (seed if spec.seed is None else spec.seed)
        self.coder = None if self.source == "jpeg2000" else CosmicRunner(
            CodecSpec(spec.name, "cosmic", spec.points), seed, encoded)

    def run(self, knob, pixels: np.ndarray, metadata=None, key: str | None = None
            ) -> tuple[str, float, np.ndarray, float, float]:
        """(label, bpp, enhanced pixels, encode seconds, decode + enhance seconds)."""
        from cosmic.evaluation.classical import encode
        from cosmic.evaluation.harness import point_label

        if self.coder is None:
            t0 = time.perf_counter()
            enc = encode(self.source, pixels, knob)
            label, bpp, decoded, t_enc, t_dec = f"{knob:g}", enc.bpp, enc.decoded, time.perf_counter() - t0, 0.0
        else:
            bpp, decoded, t_enc, t_dec = self.coder.run(knob, pixels, metadata, key)
            label = point_label(knob)
        t1 = time.perf_counter()
        y = self.pipe.enhance_array(decoded, bpp, self.steps, self.seed)
        return label, bpp, y, t_enc, t_dec + time.perf_counter() - t1
