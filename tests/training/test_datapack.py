"""The compact training pack (issue 31 item 2): lossless members round-trip bit-exactly, lossy ones
record their PSNR, every member is checked against its checksum, and the trainers read a pack
wherever they read a folder."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from helpers import golden_image
from PIL import Image

from cosmic.errors import InputError
from cosmic.training.data import ImageFolder, split_files
from cosmic.training.datapack import open_pack, read_pack_index, resolve_data, val_subset, write_pack


def _folder(root, n_train=3, n_val=5, size=96):
    root.mkdir()
    names = {"train": [], "train_extra": [], "val": []}
    for i, split in enumerate(["train"] * n_train + ["train_extra"] + ["val"] * n_val):
        name = f"c{i % 2}/{split}{i:02d}.png"
        (root / name).parent.mkdir(exist_ok=True)
        Image.fromarray(np.roll(golden_image(size, size), 7 * i, axis=1)).save(root / name)
        names[split].append(name)
    (root / "SPLITS.json").write_text(json.dumps(names))
    return root, names


@pytest.fixture
def pack(tmp_path, monkeypatch):
    monkeypatch.setenv("COSMIC_PACK_CACHE", str(tmp_path / "cache"))
    root, names = _folder(tmp_path / "ucm")
    extra = tmp_path / "scene.png"
    Image.fromarray(golden_image(130, 150)).save(extra)
    index = write_pack(root, tmp_path / "p.zip", val_images=2, extra=[extra], quality=95)
    return tmp_path / "p.zip", root, names, index


def test_val_subset_is_the_trainers_spread_out_subset():
    assert val_subset([f"v{i}" for i in range(420)], 42) == [f"v{10 * i}" for i in range(42)]
    assert val_subset(["a", "b"], 42) == ["a", "b"]


def test_pack_round_trips_lossless_members_exactly_and_lossy_ones_closely(pack):
    path, root, names, index = pack
    data = open_pack(path) / "data"
    lists = json.loads((data / "SPLITS.json").read_text())
    assert lists["val"] == [n.replace(".png", ".webp") for n in val_subset(names["val"], 2)]
    assert len(lists["train"]) == 3 and len(lists["train_extra"]) == 1
    for name in val_subset(names["val"], 2):  # stored lossless: bit-exact
        back = np.asarray(Image.open(data / name.replace(".png", ".webp")).convert("RGB"))
        assert np.array_equal(back, np.asarray(Image.open(root / name)))
        assert index["members"]["data/" + name.replace(".png", ".webp")]["psnr"] is None
    lossy = [m["psnr"] for k, m in index["members"].items() if k.startswith("data/c") and m["psnr"] is not None]
    assert len(lossy) == 4 and min(lossy) > 25.0  # a synthetic colour checker; UC Merced: 36-48 dB
    first = names["train"][0]
    back = np.asarray(Image.open(data / first.replace(".png", ".webp")).convert("RGB")).astype(float)
    mse = np.mean((back - np.asarray(Image.open(root / first))) ** 2)
    assert 10 * np.log10(255**2 / mse) == pytest.approx(index["members"]["data/" + first.replace(".png", ".webp")]["psnr"])
    assert (open_pack(path) / "extra" / "scene.webp").is_file()
    assert read_pack_index(path)["train_quality"] == 95


def test_trainers_read_a_pack_like_a_folder(pack):
    path, *_ = pack
    assert resolve_data(path) == open_pack(path) / "data"
    assert [p.name for p in split_files(resolve_data(path), "train")] == ["train00.webp", "train01.webp", "train02.webp"]
    val = ImageFolder(path, "val", crop=None)
    assert len(val) == 2 and val[0].shape == (3, 64, 64)
    assert resolve_data(path.parent / "ucm") == path.parent / "ucm"


def test_a_damaged_pack_is_refused(pack, tmp_path):
    path, *_ = pack
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("train01.webp"):
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.writestr(item, data)
    with pytest.raises(InputError, match="train01.webp fails its checksum"):
        open_pack(bad)
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("pack.json", json.dumps({"format": "cosmic-data-pack/1", "members": {"../x": {"sha256": "0"}}}))
    with pytest.raises(InputError, match="outside data/"):
        open_pack(evil)
    with pytest.raises(InputError, match="not a cosmic data pack"):
        open_pack(_zip_without_index(tmp_path))


def _zip_without_index(tmp_path):
    path = tmp_path / "plain.zip"
    buf = io.BytesIO()
    Image.fromarray(golden_image(8, 8)).save(buf, "PNG")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.png", buf.getvalue())
    return path
