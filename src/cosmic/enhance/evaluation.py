"""``cosmic eval`` codecs that enhance a source codec's decodes with LDM-RSIC, so the same
tables (and BD-rates against JPEG2000) compare them with the source codec:

- ``jpeg2000+enhance``: JPEG2000 at :data:`~cosmic.evaluation.classical.DEFAULT_KNOBS`, each
  decode enhanced with the deterministic prior (``steps`` 0, "w/o LDM");
- ``jpeg2000+enhance-ldm``: the same with the prior sampled by the LDM (the evaluation's
  ``--steps``, one codec per step count and seed, named like ``cosmic-dc``'s);
- ``cosmic+enhance``: COSMIC decodes enhanced (unavailable, with a note, until an enhancer is
  trained on them).

The bpp is the JPEG2000 codestream's: the enhancement is ground-side and costs no bits.
"""

from __future__ import annotations

import time

import numpy as np

__all__ = ["ENHANCED_CODECS", "enhanced_specs", "EnhanceRunner"]

ENHANCED_CODECS = ("jpeg2000+enhance", "jpeg2000+enhance-ldm", "cosmic+enhance")


def enhanced_specs(token: str, step_list: list[int], seeds: list[int] | None) -> list:
    """The :class:`~cosmic.evaluation.harness.CodecSpec` s of an enhanced codec token."""
    from cosmic.enhance.pipeline import ENHANCER_FOR
    from cosmic.evaluation.classical import DEFAULT_KNOBS
    from cosmic.evaluation.harness import CodecSpec, _dc_variants
    from cosmic.zoo import shipped_models

    source = token.split("+")[0]
    missing = ENHANCER_FOR[source] not in shipped_models()
    note = f"no enhancer is trained for {source} decodes yet ({ENHANCER_FOR[source]})" if missing else None
    knobs = [] if missing or source != "jpeg2000" else list(DEFAULT_KNOBS["jpeg2000"])
    if source == "cosmic" and not missing:
        note, knobs = "cosmic+enhance is not wired into cosmic eval yet", []
    if not token.endswith("-ldm"):
        return [CodecSpec(token, "enhanced", knobs, steps=0, note=note)]
    return [CodecSpec(name, "enhanced", knobs, steps=n, seed=s, note=note)
            for name, n, s in _dc_variants(token, step_list, seeds, True)]


class EnhanceRunner:
    """Codes an image with the source codec and enhances the decode (the enhancer loaded once)."""

    def __init__(self, spec, seed: int = 0):
        from cosmic.enhance.pipeline import EnhancePipeline

        self.source = spec.name.split("+")[0]
        self.pipe = EnhancePipeline.for_source(self.source)
        self.steps, self.seed = spec.steps, (seed if spec.seed is None else spec.seed)

    def run(self, knob: float, pixels: np.ndarray) -> tuple[str, float, np.ndarray, float, float]:
        """(label, bpp, enhanced pixels, encode seconds, decode + enhance seconds)."""
        from cosmic.evaluation.classical import encode

        t0 = time.perf_counter()
        enc = encode(self.source, pixels, knob)
        t1 = time.perf_counter()
        y = self.pipe.enhance_array(enc.decoded, enc.bpp, self.steps, self.seed)
        return f"{knob:g}", enc.bpp, y, t1 - t0, time.perf_counter() - t1
