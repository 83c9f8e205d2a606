"""The ``.cosmic`` container (docs/DESIGN.md §4): one file per scene, tiles coded independently.

Layout, all integers little-endian::

    magic          8 bytes   b"\\x89COSMIC\\n"  (a high byte and a newline catch text-mode mangling)
    version        u16       FORMAT_VERSION
    header_len     u32       length of the binary header that follows
    header         binary    width u32, height u32, tile u16, z shape per tile (u8, u8),
                             channels u8, bit depth u8, on-board model digest (16 bytes),
                             [version 2: quality u16, in 1/1024 steps, of a variable-rate model;
                              versions 3, 4: the same field, 0 for a fixed-rate model]
                             [version 4: edge stride u16 (see below)]
                             model name (u8 length + UTF-8), extension (u32 length + JSON:
                             sensor metadata and georeferencing; empty when absent)
    header_crc     u32       CRC32 of version + header_len + header
    tile table     rows*cols x (u32 length, u32 CRC32 of the payload)
    table_crc      u32       CRC32 of the tile table
    payloads       rows*cols tile payloads, row-major: u32 len(z) + z rANS string + y rANS string

Version 3 (only a file with a ``layout`` in its extension: several band groups and/or a validity
mask; every other file is written as version 1 or 2 exactly as before) codes ``planes`` band
groups, each a full tile grid of its own: the tile table then has planes*rows*cols entries,
group-major (all tiles of group 0, then group 1, ...), ``channels`` is the total band count, and
``layout.groups`` says which output bands (1-based) each group codes (1 band: coded as grey, 3:
as R, G, B). With ``layout.mask`` each tile payload of group 0 starts with the tile's validity
mask (:mod:`cosmic.io.mask`: 1 byte for an all-valid or all-fill tile), covered by its CRC.
:meth:`Container.plane` gives one group as a version-2-like container the decoder reads
unchanged. An older reader refuses a version 3 file with "upgrade cosmic".

Version 4 (only a file with a partial edge tile, written by an encoder that pads edge tiles to
the codec's stride; every other file keeps its version 1-3 bytes) adds ``edge stride`` s: an edge
tile that holds h x w pixels of the image is coded at ceil(h/s)*s x ceil(w/s)*s pixels instead of
tile x tile (:meth:`Header.tile_extent`), so a 260x260 image costs about what a 320x320 one
does, not what 512x512 does (issue 33 item 10). Its ``layout`` is optional (as in versions 1-2).
The decoder derives every tile's latent shape from the header (:meth:`Header.tile_latent`): no
per-tile shape is stored, so a forged file cannot ask for more work than its image size allows.

The sensor metadata and georeferencing travel in the header; they are not image data, and the
paper leaves them out of its rates, but :func:`bits_per_pixel` takes the whole file size, so they
are counted: the reported figure is slightly pessimistic, never optimistic.

Reading validates everything before allocating anything sized by the header: the tile table must
fit in the file, and the tile lengths must add up to the bytes present. A tile whose CRC fails is
reported by index and position; :meth:`Container.tile_payload` raises for that tile only, so a
caller can conceal it and decode the rest. A file cut short inside its payloads is refused, or,
opened with ``partial=True`` (``decompress --conceal``), read as far as it goes: every complete
tile is intact, the others raise :class:`TileError`. A file cut inside its header or tile table
is always refused (the tile boundaries are unknown).
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from cosmic.errors import BitstreamError, InputError
from cosmic.io.extension import parse_extension
from cosmic.io.limits import check_work
from cosmic.io.mask import MaskError, split_mask, unpack_mask

MAGIC = b"\x89COSMIC\n"
FORMAT_VERSION = 4  # the newest this module reads; a fixed-rate file is still written as version 1
QUALITY_STEP = 1024  # a variable-rate model's quality is coded as round(quality * QUALITY_STEP)
MAX_SIDE = 1 << 20  # 1,048,576 px: larger sides are refused outright
_ENTRY = struct.Struct("<II")
# width, height, tile, latent h, latent w, channels, bit depth, model digest (16 B), name length
_CORE = struct.Struct("<IIHBBBB16sB")

__all__ = [
    "MAGIC", "FORMAT_VERSION", "Header", "Container", "TileError",
    "ContainerWriter", "container_bytes", "PayloadError", "quantize_quality", "container_size", "read_container", "bits_per_pixel", "split_payload", "join_payload", "source_bits",
]


def quantize_quality(quality: float) -> float:
    """The quality value as the container stores it (a multiple of 1/1024): the encoder codes
    with this value so that the decoder's inverse gains use the same one."""
    return round(float(quality) * QUALITY_STEP) / QUALITY_STEP


class TileError(BitstreamError):
    """One tile is corrupt; the others may still be decoded. ``group``: in a file of several band
    groups, the group (0-based) whose grid ``index``, ``row`` and ``col`` count in, named in the
    message with its ``bands`` (each group's tiles are numbered from 0); None otherwise."""

    def __init__(self, index: int, row: int, col: int, reason: str, group: int | None = None,
                 bands: list[int] | None = None):
        where = "" if group is None else f"band group {group} (bands {','.join(map(str, bands or []))}), "
        super().__init__(f"{where}tile {index} (row {row}, col {col}): {reason}")
        self.index, self.row, self.col, self.reason, self.group = index, row, col, reason, group


class PayloadError(BitstreamError, ValueError):
    """A tile payload's own framing (the z-string length field) is inconsistent."""


@dataclass
class Header:
    model: str
    model_sha256: str  # hex; the container keeps its first 16 bytes
    width: int
    height: int
    tile: int
    latent: tuple[int, int]
    channels: int = 3
    bit_depth: int = 8
    metadata: dict[str, Any] = field(default_factory=dict)
    georef: dict[str, Any] | None = None
    quality: float | None = None  # a variable-rate model's quality (format version 2)
    layout: dict[str, Any] | None = None  # band groups and mask (format version 3)
    edge_stride: int = 0  # edge tiles padded to a multiple of this (format version 4); 0: to ``tile``

    @property
    def format_version(self) -> int:
        """1 for a fixed-rate model's file (byte-identical to before version 2 existed), 2 for a
        variable-rate one, 3 for a file with band groups or a mask, 4 for one whose edge tiles are
        padded to ``edge_stride`` (any of the others' contents)."""
        if self.edge_stride:
            return 4
        if self.layout:
            return 3
        return 1 if self.quality is None else 2

    def tile_extent(self, index: int) -> tuple[int, int]:
        """(height, width) in pixels at which tile ``index`` of the grid is coded: ``tile`` x
        ``tile``, or for an edge tile of a version 4 file its part of the image padded up to a
        multiple of ``edge_stride``."""
        if not self.edge_stride:
            return self.tile, self.tile
        row, col = divmod(index, self.cols)
        s = self.edge_stride
        return tuple(min(self.tile, -(-min(self.tile, side - k * self.tile) // s) * s)
                     for side, k in ((self.height, row), (self.width, col)))

    def tile_latent(self, index: int) -> tuple[int, int]:
        """The rANS shape (z per tile) of tile ``index``: :attr:`latent` scaled to its extent."""
        (eh, ew), (lh, lw) = self.tile_extent(index), self.latent
        return eh * lh // self.tile, ew * lw // self.tile

    @property
    def groups(self) -> list[list[int]]:
        """The band groups (1-based output bands), one per plane of tiles."""
        return self.layout["groups"] if self.layout else [list(range(1, self.channels + 1))]

    @property
    def planes(self) -> int:
        return len(self.groups)

    @property
    def has_mask(self) -> bool:
        return bool(self.layout and self.layout.get("mask"))

    @property
    def grid_tiles(self) -> int:
        """Tiles of one plane (one band group)."""
        return self.rows * self.cols

    @property
    def rows(self) -> int:
        return math.ceil(self.height / self.tile)

    @property
    def cols(self) -> int:
        return math.ceil(self.width / self.tile)

    @property
    def num_tiles(self) -> int:
        """Entries of the tile table: the tiles of every plane."""
        return self.rows * self.cols * self.planes

    def pack(self) -> bytes:
        """The header body: fixed binary fields, the model name, then a JSON extension block
        (sensor metadata, georeferencing) that is empty when there is neither."""
        name = self.model.encode("utf-8")
        if len(name) > 255:
            raise ValueError("model name longer than 255 bytes")
        digest = bytes.fromhex(self.model_sha256)[:16]
        ext = {}
        if self.metadata:
            ext["metadata"] = self.metadata
        if self.georef:
            ext["georef"] = self.georef
        if self.layout:
            ext["layout"] = self.layout
        ext_raw = json.dumps(ext, sort_keys=True, separators=(",", ":")).encode() if ext else b""
        quality = b"" if self.format_version == 1 else struct.pack("<H", round((self.quality or 0) * QUALITY_STEP))
        if self.edge_stride:
            quality += struct.pack("<H", self.edge_stride)
        return (
            _CORE.pack(self.width, self.height, self.tile, self.latent[0], self.latent[1],
                       self.channels, self.bit_depth, digest, len(name))
            + quality + name + struct.pack("<I", len(ext_raw)) + ext_raw
        )

    @classmethod
    def unpack(cls, raw: bytes, version: int = 1) -> "Header":
        quality, edge_stride = None, 0
        try:
            width, height, tile, lh, lw, channels, bit_depth, digest, name_len = _CORE.unpack_from(raw, 0)
            at = _CORE.size
            if version >= 2:
                (code,) = struct.unpack_from("<H", raw, at)
                at += 2
                if code == 0 and version == 2:
                    raise ValueError("quality 0")
                quality = code / QUALITY_STEP if code else None
            if version >= 4:
                (edge_stride,) = struct.unpack_from("<H", raw, at)
                at += 2
            name = raw[at : at + name_len].decode("utf-8")
            at += name_len
            (ext_len,) = struct.unpack_from("<I", raw, at)
            at += 4
            if at + ext_len != len(raw):
                raise ValueError("extension length")
        except (struct.error, UnicodeDecodeError, ValueError) as exc:
            raise BitstreamError(f"malformed header ({exc})") from None
        metadata, georef, layout = parse_extension(raw[at:], channels)
        if version < 4 and (version >= 3) != (layout is not None):
            state = "missing" if layout is None else "present"
            raise BitstreamError(f"malformed header: header field 'layout': {state} in a version {version} file")
        header = cls(
            model=name, model_sha256=digest.hex(), width=width, height=height, tile=tile,
            latent=(lh, lw), channels=channels, bit_depth=bit_depth,
            metadata=metadata, georef=georef, quality=quality, layout=layout, edge_stride=edge_stride,
        )
        _check_edge_stride(header, version)
        if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
            raise BitstreamError(f"header declares a {width}x{height} image; sides must be 1..{MAX_SIDE}")
        if tile <= 0 or tile % 64 or tile > 4096:
            raise BitstreamError(f"header declares tile size {tile}; expected a multiple of 64 up to 4096")
        if (channels not in (1, 3) and layout is None) or channels == 0 or bit_depth != 8:
            raise BitstreamError(f"unsupported channels={channels} bit_depth={bit_depth}")
        return header


def split_payload(payload: bytes) -> tuple[bytes, bytes]:
    """A tile payload → (y string, z string)."""
    if len(payload) < 4:
        raise PayloadError("payload shorter than its length field")
    (z_len,) = struct.unpack_from("<I", payload, 0)
    if 4 + z_len > len(payload):
        raise PayloadError("z string runs past the end of the tile")
    return payload[4 + z_len:], payload[4 : 4 + z_len]


def join_payload(y_string: bytes, z_string: bytes) -> bytes:
    return struct.pack("<I", len(z_string)) + z_string + y_string


def _file_head(header: Header) -> bytes:
    """Magic, version, header length, header body and its CRC: everything before the tile table."""
    blob = header.pack()
    head = struct.pack("<HI", header.format_version, len(blob)) + blob
    return MAGIC + head + struct.pack("<I", zlib.crc32(head))


def _tile_table(entries: list[bytes]) -> bytes:
    """The packed tile table entries followed by their CRC."""
    table = b"".join(entries)
    return table + struct.pack("<I", zlib.crc32(table))


def container_bytes(header: Header, payloads) -> bytes:
    """The ``.cosmic`` file for ``header`` and ``payloads`` as bytes (byte-identical to what
    :class:`ContainerWriter` writes)."""
    payloads = list(payloads)
    if len(payloads) != header.num_tiles:
        raise ValueError(f"{len(payloads)} payloads for a {header.rows}x{header.cols} tile grid")
    entries = [_ENTRY.pack(len(p), zlib.crc32(p)) for p in payloads]
    return _file_head(header) + _tile_table(entries) + b"".join(payloads)


class ContainerWriter:
    """Streams a ``.cosmic`` file: header, a tile table filled in at the end, payloads as they
    come, so a scene's payloads never need to be held together. The file appears under its name
    only after ``close()`` (temporary file, then rename); ``abort()`` or an error removes it."""

    def __init__(self, path: str | os.PathLike, header: Header):
        self.path = Path(path)
        self.header = header
        self.tmp = self.path.with_name(f".{self.path.name}.partial")
        self._entries: list[bytes] = []
        self._fh = open(self.tmp, "wb")
        self._fh.write(_file_head(header))
        self._table_at = self._fh.tell()
        self._fh.write(b"\0" * (header.num_tiles * _ENTRY.size + 4))

    def add(self, payload: bytes) -> None:
        if len(self._entries) == self.header.num_tiles:
            raise ValueError(f"more payloads than the {self.header.num_tiles} tiles of the grid")
        self._entries.append(_ENTRY.pack(len(payload), zlib.crc32(payload)))
        self._fh.write(payload)

    def close(self) -> int:
        """Write the tile table, rename into place; return the file size in bytes."""
        if len(self._entries) != self.header.num_tiles:
            self.abort()
            raise ValueError(f"{len(self._entries)} payloads for a {self.header.rows}x{self.header.cols} tile grid")
        self._fh.seek(self._table_at)
        self._fh.write(_tile_table(self._entries))
        self._fh.close()
        os.replace(self.tmp, self.path)
        return self.path.stat().st_size

    def abort(self) -> None:
        self._fh.close()
        if self.tmp.exists():
            self.tmp.unlink()

    def __enter__(self) -> "ContainerWriter":
        return self

    def __exit__(self, exc_type, *rest) -> None:
        if exc_type is not None:
            self.abort()


class Container:
    """A validated, opened ``.cosmic`` file, from a path (tile payloads are then read lazily from
    disk), from bytes, or from a binary file object (read whole)."""

    def __init__(self, source: str | os.PathLike | bytes | bytearray | memoryview | BinaryIO,
                 partial: bool = False):
        self._data: bytes | None = None
        self.partial = partial
        if isinstance(source, (bytes, bytearray, memoryview)):
            self.path, self._data = Path("<bytes>"), bytes(source)
        elif hasattr(source, "read"):
            self.path, self._data = Path(str(getattr(source, "name", "<stream>"))), source.read()
            if not isinstance(self._data, bytes):
                raise BitstreamError(f"{self.path}: not opened in binary mode")
        else:
            self.path = Path(source)
            self._check_file()
        self.file_size = len(self._data) if self._data is not None else self.path.stat().st_size
        if self.file_size == 0:
            raise BitstreamError(f"{self.path}: empty file")
        with self._open() as fh:
            self._parse(fh)

    def _check_file(self) -> None:
        """A missing path or a folder is bad input (exit 2, as for every other input), not a bad bitstream."""
        if not self.path.exists():
            raise InputError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise InputError(f"{self.path}: is a directory")

    def _open(self) -> BinaryIO:
        return io.BytesIO(self._data) if self._data is not None else open(self.path, "rb")

    def _parse(self, fh: BinaryIO) -> None:
        name = self.path.name
        magic = fh.read(len(MAGIC))
        if magic != MAGIC:
            raise BitstreamError(f"{name}: not a .cosmic file (bad magic)")
        fixed = fh.read(6)
        if len(fixed) < 6:
            raise BitstreamError(f"{name}: truncated header")
        version, header_len = struct.unpack("<HI", fixed)
        if version > FORMAT_VERSION:
            raise BitstreamError(
                f"{name}: format version {version} is newer than this cosmic reads ({FORMAT_VERSION}); upgrade cosmic"
            )
        if version < 1:
            raise BitstreamError(f"{name}: invalid format version {version}")
        if header_len > self.file_size:
            raise BitstreamError(f"{name}: truncated or corrupt header (declares {header_len} bytes)")
        blob = fh.read(header_len)
        crc = fh.read(4)
        if len(blob) < header_len or len(crc) < 4:
            raise BitstreamError(f"{name}: truncated header")
        if struct.unpack("<I", crc)[0] != zlib.crc32(fixed + blob):
            raise BitstreamError(f"{name}: header CRC mismatch (corrupt header)")
        self.version = version
        self.header = Header.unpack(blob, version)
        h = self.header
        check_work(h.width, h.height, h.planes, self.file_size, name)  # the size policy (cosmic.io.limits)
        n = h.num_tiles
        table_at = fh.tell()
        need = n * _ENTRY.size + 4
        if table_at + need > self.file_size:
            raise BitstreamError(
                f"{name}: header declares a {self.header.width}x{self.header.height} image "
                f"({n} tiles) but the file holds only {self.file_size} bytes: truncated or corrupt"
            )
        table = fh.read(n * _ENTRY.size)
        (table_crc,) = struct.unpack("<I", fh.read(4))
        if table_crc != zlib.crc32(table):
            raise BitstreamError(f"{name}: tile table CRC mismatch (corrupt tile table)")
        self.entries = [_ENTRY.unpack_from(table, i * _ENTRY.size) for i in range(n)]
        self.payload_start = fh.tell()
        total = sum(length for length, _ in self.entries)
        present = self.file_size - self.payload_start
        self.missing_bytes = max(0, total - present)
        if self.missing_bytes and not self.partial:
            raise BitstreamError(f"{name}: truncated: tiles need {total} bytes, {present} present "
                                 "(--conceal decodes the complete tiles)")
        if total < present:
            raise BitstreamError(f"{name}: {present - total} unexpected trailing bytes")
        self.offsets = []
        at = self.payload_start
        for length, _ in self.entries:
            self.offsets.append(at)
            at += length

    def tile_position(self, index: int) -> tuple[int, int]:
        return divmod(index, self.header.cols)

    def tile_error(self, index: int, reason: str) -> TileError:
        """The error of tile table entry ``index``: in a file of several band groups, numbered
        within its group's grid and naming the group."""
        h = self.header
        group, local = divmod(index, h.grid_tiles)
        if h.planes == 1:
            return TileError(index, *self.tile_position(index), reason)
        return TileError(local, *divmod(local, h.cols), reason, group, h.groups[group])

    def tile_payload(self, index: int) -> bytes:
        """The payload of one tile, CRC-checked; raises :class:`TileError` for a bad tile."""
        length, crc = self.entries[index]
        with self._open() as fh:
            fh.seek(self.offsets[index])
            payload = fh.read(length)
        if len(payload) != length:
            raise self.tile_error(index, f"truncated payload ({len(payload)} of {length} bytes present)")
        if zlib.crc32(payload) != crc:
            raise self.tile_error(index, "CRC mismatch (corrupt data)")
        return payload

    @property
    def bpp(self) -> float:
        return bits_per_pixel(self.file_size, self.header.width, self.header.height)

    def plane(self, group: int) -> "Container":
        """Band group ``group`` as a container of its own (one tile grid, 1 or 3 channels, no
        layout), which :func:`cosmic.ground.scene.decode_rows` decodes like any other file."""
        return _Plane(self, group) if self.header.layout else self

    def tile_mask(self, index: int) -> np.ndarray | None:
        """The validity mask of tile ``index`` of the grid, cut to the image: (h, w) bool, or None
        for a file without a mask. :class:`TileError` for a bad tile."""
        h = self.header
        if not h.has_mask:
            return None
        row, col = divmod(index, h.cols)
        try:
            section, _ = split_mask(self.tile_payload(index))
            return unpack_mask(section, min(h.tile, h.height - row * h.tile), min(h.tile, h.width - col * h.tile))
        except MaskError as exc:
            raise self.tile_error(index, str(exc)) from None


class _Plane:
    """One band group of a version 3 container, seen as a version 2-like container: tile ``i``
    of the group is table entry ``group * rows * cols + i``; group 0's mask section is cut off;
    a group coded by its own model (``layout.models``) names that model in its header."""

    def __init__(self, parent: Container, group: int):
        h = parent.header
        if not 0 <= group < h.planes:
            raise IndexError(f"band group {group} of {h.planes}")
        self.parent, self.group, self.path, self.partial = parent, group, parent.path, parent.partial
        own = (h.layout.get("models") or [None] * h.planes)[group]  # the group's own model, if any
        model = {"model": own["model"], "model_sha256": own["sha256"]} if own else {}
        self.header = replace(h, channels=len(h.groups[group]), layout=None, **model)
        self.file_size, self.version = parent.file_size, parent.version

    def tile_position(self, index: int) -> tuple[int, int]:
        return divmod(index, self.header.cols)

    def tile_error(self, index: int, reason: str) -> TileError:
        """The error of this group's tile ``index`` (naming the group when the file has several)."""
        return self.parent.tile_error(self.group * self.header.grid_tiles + index, reason)

    def tile_payload(self, index: int) -> bytes:
        payload = self.parent.tile_payload(self.group * self.header.grid_tiles + index)
        if self.group or not self.parent.header.has_mask:
            return payload
        try:
            return split_mask(payload)[1]
        except MaskError as exc:
            raise self.tile_error(index, str(exc)) from None

    @property
    def bpp(self) -> float:
        return self.parent.bpp


def _check_edge_stride(header: Header, version: int) -> None:
    """A version 4 header's edge stride: a divisor of the tile that the latent grid divides
    (the codec's stride, 64 for every COSMIC model); and a version 4 file needs it."""
    s, t = header.edge_stride, header.tile
    if version < 4:
        return
    step = t // header.latent[0] if header.latent[0] and t % header.latent[0] == 0 else 0
    if not (0 < s <= t and t % s == 0 and step and s % step == 0):
        raise BitstreamError(f"malformed header: header field 'edge_stride' = {s} does not fit tile {t} "
                             f"and latent {header.latent[0]}")


def read_container(source: str | os.PathLike | bytes | BinaryIO, partial: bool = False) -> Container:
    """Open and validate a ``.cosmic`` file given as a path, bytes or a binary file object.
    ``partial``: accept a file cut short inside its payloads (a downlink that lost the tail); the
    tiles not wholly present then raise :class:`TileError`."""
    return Container(source, partial)


def bits_per_pixel(file_bytes: int, width: int, height: int) -> float:
    """bpp = file bytes x 8 / pixels, from the real file."""
    return file_bytes * 8.0 / (width * height)


def container_size(header: Header, payload_lengths) -> int:
    """The size in bytes of the file :class:`ContainerWriter` writes for ``header`` and payloads
    of these lengths (magic, version, header, CRCs, tile table, payloads), without writing it."""
    fixed = len(MAGIC) + 6 + len(header.pack()) + 4
    return fixed + header.num_tiles * _ENTRY.size + 4 + sum(payload_lengths)


def source_bits(header) -> int:
    """Bits per sample of the coded source (8 unless the header records a wider type)."""
    dtype = ((header.georef or {}).get("source") or {}).get("source_dtype") or "uint8"
    try:
        return int(np.dtype(dtype).itemsize * 8)
    except TypeError:
        return 8
