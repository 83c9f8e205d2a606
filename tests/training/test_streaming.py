"""Streamed training data: files read lazily (flat memory), fMoW sidecars, GeoTIFF windows, tar
shards, and the same crops whatever the number of workers."""

from __future__ import annotations

import json
import pickle
import tarfile
import tracemalloc

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from cosmic.training.distributed import StepSampler
from cosmic.training.streaming import StreamedCrops, TarShardCrops, find_shards

FMOW = {"gsd": 0.5, "utm": "33T", "timestamp": "2016-07-01T10:00:00Z", "off_nadir_angle_dbl": 12.0,
        "cloud_cover": 3.0, "target_azimuth_dbl": 80.0, "sun_azimuth_dbl": 150.0, "sun_elevation_dbl": 55.0,
        "img_width": 40, "img_height": 40, "bounding_boxes": []}


@pytest.fixture(scope="module")
def many_files(tmp_path_factory):
    """2000 small PNGs in 20 class folders (the UC Merced / fMoW nesting)."""
    root = tmp_path_factory.mktemp("many")
    rng = np.random.default_rng(0)
    for i in range(2000):
        folder = root / f"class{i % 20:02d}"
        folder.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / f"im{i:04d}.png",
                                                                                 compress_level=0)
    return root


def test_streamed_dataset_holds_no_pixels(many_files):
    """The dataset is its file list: a few bytes per file to pickle to each worker, and reading
    500 crops leaves no decoded pixels behind (an in-memory copy of these files is 9.6 MB)."""
    ds = StreamedCrops(many_files, "all", crop=32, seed=0)
    assert len(ds.files) == 2000
    assert len(pickle.dumps(ds)) < 2000 * 120
    ds[0]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(500):
        x = ds[i]
        assert x.shape == (3, 32, 32) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    del x
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 200_000, grown


def test_streamed_crops_are_a_function_of_seed_and_index(many_files):
    a, b = StreamedCrops(many_files, "all", crop=32, seed=3), StreamedCrops(many_files, "all", crop=32, seed=3)
    assert torch.equal(a[17], b[17]) and not torch.equal(a[17], a[18])
    assert not torch.equal(a[17], StreamedCrops(many_files, "all", crop=32, seed=4)[17])
    batches = []
    for workers in (0, 2):
        loader = DataLoader(a, batch_size=4, sampler=StepSampler(5, 4, total=4 * 8), num_workers=workers)
        batches.append(torch.cat(list(loader)))
    assert batches[0].shape == (12, 3, 32, 32) and torch.equal(batches[0], batches[1])
    assert torch.equal(batches[0][0], a[20])  # step 5, position 0 -> index 20


def test_fmow_sidecars_and_small_images(tmp_path):
    from cosmic.metadata import SensorMetadata

    Image.fromarray(np.full((48, 48, 3), 100, np.uint8)).save(tmp_path / "a_rgb.jpg")
    (tmp_path / "a_rgb.json").write_text(json.dumps(FMOW))
    Image.fromarray(np.full((48, 48, 3), 200, np.uint8)).save(tmp_path / "b_rgb.png")
    Image.fromarray(np.full((16, 16, 3), 50, np.uint8)).save(tmp_path / "tiny.png")  # under the crop: redrawn
    ds = StreamedCrops(tmp_path, "all", crop=32, seed=0, metadata=SensorMetadata(gsd=0.3))
    seen = {}
    for i in range(40):
        crop, values, present = ds[i]
        assert crop.shape == (3, 32, 32)
        seen[round(float(crop.mean()) * 255)] = int(present.sum())
    from cosmic.ground.diffusion.metadata_encoder import metadata_to_tensor

    full = int(metadata_to_tensor([SensorMetadata.from_dict(FMOW)])[1].sum())
    assert full == 10  # all eight fMoW keys (utm and timestamp give two inputs each)
    assert seen.get(100) == full and seen.get(200) == 1 and 50 not in seen  # vs the default gsd alone


def test_geotiff_is_read_one_window(tmp_path):
    import rasterio
    from rasterio.transform import from_origin

    data = (np.arange(3 * 100 * 120, dtype=np.uint16).reshape(3, 100, 120) * 7) % 4000
    with rasterio.open(tmp_path / "scene.tif", "w", driver="GTiff", width=120, height=100, count=3,
                       dtype="uint16", crs="EPSG:32633", transform=from_origin(500000, 4e6, 10, 10)) as f:
        f.write(data)
    ds = StreamedCrops(tmp_path, "all", crop=64, seed=0)
    crop = ds[0]
    assert crop.shape == (3, 64, 64) and float(crop.std()) > 0.05  # a 2-98 % stretch of 16-bit data


def test_tar_shards(tmp_path):
    from cosmic.metadata import SensorMetadata

    for s in range(2):
        with tarfile.open(tmp_path / f"shard-{s:03d}.tar", "w") as tar:
            for k in range(3):
                key = f"s{s}k{k}"
                png, meta = tmp_path / f"{key}.png", tmp_path / f"{key}.json"
                Image.fromarray(np.full((40, 40, 3), 10 + 40 * s + 10 * k, np.uint8)).save(png)
                meta.write_text(json.dumps({**FMOW, "gsd": 1.0 + s}))
                tar.add(png, arcname=f"{key}.png")
                tar.add(meta, arcname=f"{key}.json")
    shards = find_shards(tmp_path)
    assert len(shards) == 2
    ds = TarShardCrops(shards, crop=32, seed=0, metadata=SensorMetadata())
    it = iter(ds)
    samples = [next(it) for _ in range(6)]  # one pass over both shards
    levels = sorted(round(float(c.mean()) * 255) for c, _, _ in samples)
    assert levels == [10, 20, 30, 50, 60, 70]
    assert all(int(p.sum()) == 10 for _, _, p in samples)
    # two workers split the shards between them: one pass still sees each image once
    loader = DataLoader(TarShardCrops(shards, crop=32, seed=0), batch_size=1, num_workers=2)
    it = iter(loader)
    got = sorted(round(float(next(it).mean()) * 255) for _ in range(6))
    assert got == levels


def test_streamed_stage1_resumes_exactly(tiny_data, tmp_path, monkeypatch):
    """--stream keeps the exact-resume guarantee: 2 steps in one go = 1 step, stop, resume, 1 step."""
    import cosmic.models.registry as reg
    from cosmic.utils.pretrained import read_weights

    from cosmic.training.stage1 import Stage1Config, train_stage1

    monkeypatch.setitem(reg.PRESETS, "small", {"N": 16, "M": 16, "ground_channels": 8, "latent_channels": 4})

    def run(out, steps, pause_at=None):
        cfg = Stage1Config(data=str(tiny_data), out=str(out), steps=steps, batch_size=2, crop=64, lr=1e-3,
                           val_every=10**6, checkpoint_every=10**6, channels_last=False, stream=True,
                           pause_at=pause_at, device="cpu")
        train_stage1(cfg, progress=False)
        return read_weights(out / "last")

    whole = run(tmp_path / "a", 2)
    run(tmp_path / "b", 2, pause_at=1)
    resumed = run(tmp_path / "b", 2)
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
