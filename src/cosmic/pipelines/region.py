"""Region and reduced-resolution decode (issue 33 item 12): only the tiles a window needs.

A :class:`Region` is a view of a ``.cosmic`` container that the decode pipeline reads like any
other: its tile grid is the smallest block of the file's tiles that covers the window (plus, with
``--deblock``, the tiles within the filter's reach of the window's edges, so the border filter
sees what it sees in a full decode), its tile indices map to the file's (so a compensated tile
keeps its seed, and a bad tile is named by its place in the file), and :meth:`Region.cut` turns
each decoded tile row into the rows of the window. A window decode is therefore the same crop of
the full decode, exactly (a concealed tile is the exception: its fill colour comes from the
decoded neighbours, which a region may not include).

``reduce=K`` (``--reduce K``) averages 2^K x 2^K blocks of the decoded picture (aligned to the
file's origin, as GDAL's overviews are), one tile row at a time: the full-resolution image is
never held or written. It is the exact area average of the full decode, not a cheaper decode:
this codec has no intermediate resolution in pixels (transconv's features at H/4 are not an
image, the decoder D synthesises at full resolution), so the time saved is only the output's
(docs/RESULTS.md, "Region and reduced-resolution decode"). A block partly over fill averages its
valid pixels; a block of fill only is fill.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import numpy as np

from cosmic.errors import InputError
from cosmic.ground.deblock import DEFAULT_DEBLOCK

__all__ = ["Window", "Region", "parse_window", "parse_bbox", "window_from_bbox", "open_region", "MAX_REDUCE"]

#: the largest --reduce: 2^6 = 64 px, the smallest tile, so a tile always reduces to whole pixels
MAX_REDUCE = 6


@dataclass(frozen=True)
class Window:
    """A pixel window of a scene: its left column, top row, width and height (GDAL's -srcwin)."""

    col: int
    row: int
    width: int
    height: int


def _numbers(text: str, option: str, names: str, kind=float) -> list:
    parts = [p.strip() for p in str(text).split(",")]
    try:
        if len(parts) != 4:
            raise ValueError
        return [kind(p) for p in parts]
    except ValueError:
        raise InputError(f"{option} {text}: expected {names}, four numbers separated by commas") from None


def parse_window(text: str) -> Window:
    """``--window col,row,width,height`` (whole pixels)."""
    if not re.fullmatch(r"\s*-?\d+\s*(,\s*-?\d+\s*){3}", str(text)):
        raise InputError(f"--window {text}: expected col,row,width,height, four whole numbers of pixels")
    return Window(*_numbers(text, "--window", "col,row,width,height", int))


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """``--bbox minx,miny,maxx,maxy`` (in the file's CRS)."""
    box = _numbers(text, "--bbox", "minx,miny,maxx,maxy")
    if not all(math.isfinite(v) for v in box) or box[0] >= box[2] or box[1] >= box[3]:
        raise InputError(f"--bbox {text}: expected finite minx < maxx and miny < maxy")
    return tuple(box)


def check_window(header, window) -> Window:
    """``window`` (a :class:`Window` or four integers) if it is a non-empty window inside the
    ``header``'s image; InputError otherwise (in the API's terms, ``window=(...)``; the CLI's
    messages say ``--window``, :func:`cosmic.errors.cli_terms`)."""
    values = (window.col, window.row, window.width, window.height) if isinstance(window, Window) else window
    try:
        if len(values) != 4 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
            raise TypeError
    except TypeError:
        raise InputError(f"window={window!r}: expected (col, row, width, height), four integers") from None
    w = Window(*(int(v) for v in values))
    text = f"window=({w.col}, {w.row}, {w.width}, {w.height})"
    if w.width <= 0 or w.height <= 0:
        raise InputError(f"{text}: width and height must be at least 1")
    if w.col < 0 or w.row < 0 or w.col + w.width > header.width or w.row + w.height > header.height:
        raise InputError(f"{text}: outside the {header.width}x{header.height} image "
                         f"(col + width <= {header.width}, row + height <= {header.height}, none negative)")
    return w


def window_from_bbox(header, bbox) -> Window:
    """The pixel window that covers ``bbox`` (minx, miny, maxx, maxy in the file's CRS; pixels
    the box touches are included), which must lie inside the image."""
    from rasterio.transform import Affine

    transform = (header.georef or {}).get("transform")
    if not transform:
        raise InputError("--bbox: the file has no georeferencing; use --window col,row,width,height")
    inverse = ~Affine(*transform)
    corners = [inverse * (x, y) for x in (bbox[0], bbox[2]) for y in (bbox[1], bbox[3])]
    cols, rows = [c for c, _ in corners], [r for _, r in corners]
    eps = 1e-6  # a box edge on a pixel edge does not take in the next pixel
    col0, row0 = math.floor(min(cols) + eps), math.floor(min(rows) + eps)
    col1, row1 = math.ceil(max(cols) - eps), math.ceil(max(rows) - eps)
    left, top, right, bottom = Affine(*transform) * (0, 0) + Affine(*transform) * (header.width, header.height)
    if col0 < 0 or row0 < 0 or col1 > header.width or row1 > header.height or col1 <= col0 or row1 <= row0:
        raise InputError(f"--bbox {','.join(f'{v:g}' for v in bbox)}: not inside the image's bounds "
                         f"{min(left, right):g},{min(top, bottom):g},{max(left, right):g},{max(top, bottom):g}")
    return Window(col0, row0, col1 - col0, row1 - row0)


def check_reduce(reduce) -> int:
    """``reduce`` if it is a whole number 0..:data:`MAX_REDUCE`; InputError otherwise."""
    if isinstance(reduce, bool) or not isinstance(reduce, (int, np.integer)) or not 0 <= reduce <= MAX_REDUCE:
        raise InputError(f"reduce={reduce!r}: expected a whole number 0..{MAX_REDUCE} (2^K times smaller)")
    return int(reduce)


def open_region(container, window=None, reduce: int = 0, deblock: bool = DEFAULT_DEBLOCK):
    """``container`` itself when neither a window nor a reduction is asked for, else the
    :class:`Region` of ``window`` (default: the whole image) at 2^``reduce`` times less
    resolution; ``deblock``: the decode filters tile borders, so the region takes in the tiles
    within the filter's reach of the window."""
    from cosmic.ground.deblock import DEFAULT_WIDTH

    reduce = check_reduce(reduce)
    if window is None and not reduce:
        return container
    h = container.header
    window = Window(0, 0, h.width, h.height) if window is None else check_window(h, window)
    return Region(container, window, reduce, DEFAULT_WIDTH if deblock else 0)


def _span(start: int, stop: int, limit: int, tile: int, margin: int) -> tuple[int, int]:
    """The tiles [first, last) of one axis that cover pixels [start, stop) and ``margin`` around."""
    return max(0, start - margin) // tile, math.ceil(min(limit, stop + margin) / tile)


class Region:
    """A window of a container at a resolution 2^``reduce`` lower, seen as a container: the
    ``header`` is the covering block of tiles (what the row decoder reads; ``georef`` is the
    output's), :attr:`size` the output's, :meth:`cut` a decoded tile row's part of the output."""

    def __init__(self, parent, window: Window, reduce: int = 0, margin: int = 0):
        h = parent.header
        self.parent, self.window, self.reduce, self.margin = parent, window, reduce, margin
        f = 1 << reduce  # output pixels: the 2^K blocks of the file's grid the window touches
        self.out_col, self.out_row = window.col // f, window.row // f
        self.size = (math.ceil((window.col + window.width) / f) - self.out_col,
                     math.ceil((window.row + window.height) / f) - self.out_row)
        self.col0, col1 = _span(self.out_col * f, (self.out_col + self.size[0]) * f, h.width, h.tile, margin)
        self.row0, row1 = _span(self.out_row * f, (self.out_row + self.size[1]) * f, h.height, h.tile, margin)
        self.header = replace(h, width=min(h.width, col1 * h.tile) - self.col0 * h.tile,
                              height=min(h.height, row1 * h.tile) - self.row0 * h.tile, georef=self._georef())
        self.path, self.partial, self.version = parent.path, parent.partial, getattr(parent, "version", None)
        self.file_size = parent.file_size

    def _georef(self) -> dict | None:
        """The parent's georeferencing with the transform moved to the output's first pixel and
        its pixel size times 2^K."""
        georef = self.parent.header.georef
        if not georef or not georef.get("transform"):
            return georef
        from rasterio.transform import Affine

        f = 1 << self.reduce
        moved = Affine(*georef["transform"]) * Affine.translation(self.out_col * f, self.out_row * f) * Affine.scale(f)
        return {**georef, "transform": list(moved)[:6]}

    @property
    def bpp(self) -> float:
        return self.parent.bpp

    def parent_index(self, index: int) -> int:
        """The file's index of this grid's tile ``index``."""
        r, c = divmod(index, self.header.cols)
        return (self.row0 + r) * self.parent.header.cols + self.col0 + c

    def tile_position(self, index: int) -> tuple[int, int]:
        return self.parent.tile_position(self.parent_index(index))

    def tile_payload(self, index: int) -> bytes:
        return self.parent.tile_payload(self.parent_index(index))

    def tile_mask(self, index: int):
        return self.parent.tile_mask(self.parent_index(index))

    def plane(self, group: int) -> "Region":
        """Band group ``group`` of the same window."""
        plane = self.parent.plane(group)
        return self if plane is self.parent else Region(plane, self.window, self.reduce, self.margin)

    def cut(self, top: int, pixels: np.ndarray, valid: np.ndarray | None = None):
        """The output's part of the decoded rows ``pixels`` (h, w, c) that start at row ``top``
        of this grid (cut to the image; ``valid``: their (h, w) validity or None): ``(row,
        pixels, valid)`` with ``row`` the output row of the first, or None if none is in it."""
        if self.reduce:
            pixels, valid = reduce_pixels(pixels, valid, 1 << self.reduce)
        f = 1 << self.reduce
        first = (self.row0 * self.parent.header.tile + top) // f - self.out_row  # output row of the first
        left = self.col0 * self.parent.header.tile // f
        a, b = max(0, -first), min(pixels.shape[0], self.size[1] - first)
        if a >= b:
            return None
        cols = slice(self.out_col - left, self.out_col - left + self.size[0])
        return first + a, pixels[a:b, cols], None if valid is None else valid[a:b, cols]


def reduce_pixels(pixels: np.ndarray, valid: np.ndarray | None, f: int):
    """Average ``f`` x ``f`` blocks of (h, w, c) uint8 ``pixels`` (blocks cut by the edge average
    what they hold), over the ``valid`` pixels only when a mask is given: ``(pixels, valid)``
    with a block valid when any of its pixels is (a block of fill only reads 0)."""
    weight = np.ones(pixels.shape[:2]) if valid is None else valid.astype(np.float64)
    rows, cols = np.arange(0, pixels.shape[0], f), np.arange(0, pixels.shape[1], f)

    def block_sum(a: np.ndarray) -> np.ndarray:
        return np.add.reduceat(np.add.reduceat(a, rows, axis=0), cols, axis=1)

    total = block_sum(pixels * weight[..., None])
    count = block_sum(weight)
    mean = np.where(count[..., None] > 0, total / np.maximum(count, 1)[..., None], 0.0)
    return np.rint(mean).astype(np.uint8), None if valid is None else count > 0


def output_size(container) -> tuple[int, int]:
    """(width, height) of what decoding ``container`` gives: a :class:`Region`'s window at its
    resolution, else the whole image."""
    return container.size if isinstance(container, Region) else (container.header.width, container.header.height)


def cut_rows(container, top: int, pixels: np.ndarray, valid: np.ndarray | None):
    """:meth:`Region.cut` for a region, ``(top, pixels, valid)`` unchanged for a whole file."""
    return container.cut(top, pixels, valid) if isinstance(container, Region) else (top, pixels, valid)


def file_tile_indices(container, indices: list[int]) -> list[int]:
    """The file's tile indices of a region's tiles ``indices`` (a whole file's are its own)."""
    return [container.parent_index(i) for i in indices] if isinstance(container, Region) else indices
