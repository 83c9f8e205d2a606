"""Complete codecs (both sides) and the model registry."""

from cosmic.models.cosmic import Cosmic
from cosmic.models.registry import MODELS, PRESETS, build_model

__all__ = ["Cosmic", "MODELS", "PRESETS", "build_model"]
