"""Ground-side enhancement of decoded images with a latent-diffusion distortion prior (LDM-RSIC).

* :mod:`cosmic.enhance.modules`: self-encoder / prior regressor, MEN with DFAM;
* :mod:`cosmic.enhance.diffusion`: the stage-II prior LDM (diffusers UNet2DModel + DDIM);
* :mod:`cosmic.enhance.model`: :class:`Enhancer`, presets, diffusers-style saving;
* :mod:`cosmic.enhance.pipeline`: :class:`EnhancePipeline`, the enhancer as a ground post-processor
  (:mod:`cosmic.ground.postprocess`: tiled enhancement of a decoded picture; files are the
  pipelines' :mod:`cosmic.pipelines.enhance_job`);
* the ``jpeg2000+enhance`` codecs of ``cosmic eval`` are in :mod:`cosmic.evaluation.specs` and :mod:`cosmic.evaluation.runners` (evaluation uses enhance, not the other way round).

Names are imported on first use (``cosmic eval`` loads diffusers only if it enhances).
"""

from importlib import import_module

_WHERE = {"Enhancer": "model", "ENHANCE_PRESETS": "model", "build_enhancer": "model",
          "EnhancePipeline": "pipeline"}
__all__ = list(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'cosmic.enhance' has no attribute '{name}'")
    return getattr(import_module(f"cosmic.enhance.{_WHERE[name]}"), name)
