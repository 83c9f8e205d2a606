"""benchmarks/batch_files.py: the compress variant's inputs (UC Merced val crops, one class after
another) and its timing of child processes."""

from __future__ import annotations

import json
import sys

import numpy as np
from helpers import REPO, golden_image, load_script
from PIL import Image

bench = load_script(REPO / "benchmarks" / "batch_files.py")


def test_val_crops_take_one_class_after_another(tmp_path):
    data = tmp_path / "ucm"
    for cls in ("b", "a"):
        (data / cls).mkdir(parents=True)
        for i in (80, 81):
            Image.fromarray(golden_image(96, 80 + i % 2)).save(data / cls / f"{cls}{i}.png")
    (data / "SPLITS.json").write_text(json.dumps({"val": ["a/a80.png", "a/a81.png", "b/b80.png", "b/b81.png"]}))
    (tmp_path / "in").mkdir()
    paths = bench.val_crops(tmp_path / "in", 3, 64, data)
    assert [p.name for p in paths] == ["a80.png", "b80.png", "a81.png"]
    crop = np.asarray(Image.open(paths[2]))
    assert crop.shape == (64, 64, 3) and np.array_equal(crop, golden_image(96, 81)[:64, :64])


def test_timed_counts_child_cpu_seconds():
    wall, cpu = bench.timed([[sys.executable, "-c", "sum(range(3_000_000))"]])
    assert wall > 0 and 0 < cpu < 10 * wall + 1
