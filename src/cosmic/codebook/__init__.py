"""Code-RSIC (Li & Hou, "Exploiting Inter-Image Similarity Prior for Low-Bitrate Remote Sensing
Image Compression"): a decoder-side codebook prior that works after any codec's decode.

* :mod:`~cosmic.codebook.vqgan` - stage 1: VQGAN (encoder, EMA codebook, D_H, discriminator);
* :mod:`~cosmic.codebook.predictor` - stage 2: LQ encoder E_L + code-prediction Transformer;
* :mod:`~cosmic.codebook.hpin` - stage 3: HPIN with the fidelity knob;
* :mod:`~cosmic.codebook.prior` - the three together (:class:`CodebookPrior`), as the decode
  pipeline applies them; training in :mod:`cosmic.training.codebook`.
"""

from cosmic.codebook.hpin import HPIN
from cosmic.codebook.predictor import CodePredictor
from cosmic.codebook.presets import PRESETS, preset
from cosmic.codebook.prior import DEFAULT_PRIOR, CodebookPrior, check_fidelity, load_prior
from cosmic.codebook.quantizer import EMAVectorQuantizer
from cosmic.codebook.vqgan import VQGAN, PatchDiscriminator

__all__ = ["HPIN", "CodePredictor", "PRESETS", "preset", "DEFAULT_PRIOR", "CodebookPrior", "check_fidelity",
           "load_prior", "EMAVectorQuantizer", "VQGAN", "PatchDiscriminator"]
