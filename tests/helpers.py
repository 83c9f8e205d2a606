"""Shared test helpers (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).parent  # tests/: the tree under it mirrors src/cosmic/
REPO = HERE.parent
SHARED_DATA = REPO.parent / "shared" / "data"  # the shared imagery beside the checkout (CI has it)
FIXTURES = HERE / "fixtures"
WORKERS = HERE / "workers"  # scripts the torchrun tests launch
TINY_MODEL = FIXTURES / "tiny-model"


def golden_image(h: int = 200, w: int = 300) -> np.ndarray:
    """A deterministic, textured (H, W, 3) uint8 image that spans two tile rows and columns."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(xx / 17.0) * np.cos(yy / 23.0)
    g = 128 + 90 * np.sin((xx + yy) / 11.0)
    b = (xx * 255.0 / w + yy * 100.0 / h) % 256
    checker = ((xx // 8 + yy // 8) % 2) * 30
    img = np.stack([r + checker, g, b - checker], axis=-1)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def split_folder(root, size: int, shift: int, axis: int):
    """Three shifted golden images of ``size`` px in ``root`` with a SPLITS.json: im0, im1 train,
    im2 val."""
    import json

    from PIL import Image

    root.mkdir()
    for i in range(3):
        Image.fromarray(np.roll(golden_image(size, size), shift * i, axis=axis)).save(root / f"im{i}.png")
    (root / "SPLITS.json").write_text(json.dumps({"train": ["im0.png", "im1.png"], "val": ["im2.png"]}))
    return root


def perturbed_enhancer(enhancer):
    """A fresh LDM-RSIC enhancer whose MEN output is not zero-initialised (so the prior matters)."""
    import torch

    torch.manual_seed(0)
    torch.nn.init.normal_(enhancer.men.out.weight, std=0.05)
    return enhancer.eval()


def load_script(path: Path):
    """A repository script (benchmarks/, scripts/) imported as a module, for its tests."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_tif(path, bands, dtype, nodata=None, descriptions=None, colorinterp=None, tags=None):
    """(C, H, W) array -> georeferenced GeoTIFF (UTM 10N, 30 m pixels)."""
    import rasterio
    from rasterio.enums import ColorInterp
    from rasterio.transform import from_origin

    c, h, w = bands.shape
    rgb = colorinterp and colorinterp[:3] == [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
    extra = {"photometric": "RGB"} if rgb and ColorInterp.alpha not in colorinterp else {}
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=c, dtype=dtype, crs="EPSG:32610",
                       transform=from_origin(433785.0, 5215815.0, 30.0, 30.0), nodata=nodata, **extra) as ds:
        ds.write(bands.astype(dtype))
        for i, d in enumerate(descriptions or [], 1):
            ds.set_band_description(i, d)
        if colorinterp:
            ds.colorinterp = colorinterp
        if tags:
            ds.update_tags(**tags)
    return path


def encode_parts(codec, pixels: np.ndarray, name: str, quality: float | None = None,
                 metadata: dict | None = None, runtime: str = "torch"):
    """(header, payloads) of ``pixels`` coded through the product's one encode path
    (:class:`cosmic.pipelines.EncodePipeline`; PyTorch computes y unless ``runtime`` says
    otherwise), for tests that take a file apart or forge one."""
    from cosmic.metadata import SensorMetadata
    from cosmic.pipelines import EncodePipeline, open_scene

    scene = open_scene(pixels, metadata=SensorMetadata.from_dict(metadata) if metadata else None)
    coded = EncodePipeline(codec, name, runtime=runtime).encode(scene, quality=quality)
    return coded.header, coded.payloads


def write_file(path, header, payloads) -> int:
    """Write a container of ``header`` and ``payloads`` (forged or real); returns its size."""
    from cosmic.io.container import container_bytes

    data = container_bytes(header, payloads)
    Path(path).write_bytes(data)
    return len(data)


def encode_file(codec, pixels: np.ndarray, name: str, path=None, quality: float | None = None,
                metadata: dict | None = None, runtime: str = "torch") -> bytes:
    """A ``.cosmic`` file of ``pixels`` through the encode pipeline (see :func:`encode_parts`);
    returns its bytes and writes them to ``path`` when given."""
    from cosmic.io.container import container_bytes

    data = container_bytes(*encode_parts(codec, pixels, name, quality, metadata, runtime))
    if path is not None:
        Path(path).write_bytes(data)
    return data
