"""One encode pipeline and one decode pipeline under every entry point.

* :class:`EncodePipeline` (:mod:`cosmic.pipelines.encode`): scene (:func:`open_scene`: image,
  GeoTIFF or array) -> tiles -> on-board codec -> ``.cosmic`` container, at a fixed quality or
  under rate control (a bpp or byte budget).
* :class:`DecodePipeline` (:mod:`cosmic.pipelines.decode`): container -> entropy decode ->
  optional diffusion compensation -> ground decoder -> array / image file / GeoTIFF.

The encode side imports nothing from :mod:`cosmic.ground`; import
:mod:`cosmic.pipelines.encode` directly to keep it that way.
"""

from cosmic.pipelines.decode import DecodePipeline, open_container
from cosmic.pipelines.encode import EncodePipeline, EncodedScene
from cosmic.pipelines.scene import Scene, open_scene

__all__ = ["EncodePipeline", "EncodedScene", "DecodePipeline", "Scene", "open_scene", "open_container"]
