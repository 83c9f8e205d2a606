"""One encode pipeline and one decode pipeline under every entry point.

* :class:`EncodePipeline` (:mod:`cosmic.pipelines.encode`): scene (:func:`open_scene`: image,
  GeoTIFF or array) -> tiles -> on-board codec -> ``.cosmic`` container, at a fixed quality or
  under rate control (a bpp or byte budget).
* :class:`DecodePipeline` (:mod:`cosmic.pipelines.decode`): container -> entropy decode ->
  optional diffusion compensation -> ground decoder -> array / image file / GeoTIFF.
* One file's job per command, a typed request -> result function that the one-file command,
  the batch workers (:mod:`cosmic.pipelines.batch`) and the Python API all call:
  :mod:`~cosmic.pipelines.encode_job` (``encode_file(EncodeRequest) -> EncodeResult``),
  :mod:`~cosmic.pipelines.decode_job` (``decode_file(DecodeRequest) -> DecodeResult``, with any
  ground post-processor of :mod:`cosmic.ground.postprocess`) and
  :mod:`~cosmic.pipelines.enhance_job` (``enhance_file(EnhanceRequest) -> EnhanceResult``).

The names below are imported on first use, so that the encode side (``cosmic.pipelines.encode``)
never loads :mod:`cosmic.ground`.
"""

from importlib import import_module

_WHERE = {
    "EncodePipeline": "encode", "EncodedScene": "encode", "DecodePipeline": "decode",
    "open_container": "decode", "Scene": "scene", "open_scene": "scene",
}
__all__ = list(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'cosmic.pipelines' has no attribute '{name}'")
    return getattr(import_module(f"cosmic.pipelines.{_WHERE[name]}"), name)
