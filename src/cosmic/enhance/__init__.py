"""Ground-side enhancement of decoded images with a latent-diffusion distortion prior (LDM-RSIC)."""

from cosmic.enhance.model import ENHANCE_PRESETS, Enhancer, build_enhancer

__all__ = ["ENHANCE_PRESETS", "Enhancer", "build_enhancer"]
