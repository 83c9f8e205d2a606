"""The scene classifier's trainer (:mod:`cosmic.training.classifier`), and its model feeding `cosmic eval`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image


@pytest.mark.slow
def test_classifier_learns_a_tiny_set_and_feeds_eval(cli, tmp_path):
    from cosmic.evaluation.classifier import SceneClassifier
    from cosmic.training.classifier import train_classifier

    data = tmp_path / "set"
    rng = np.random.default_rng(0)
    for cls, colour in (("red", (200, 40, 40)), ("blue", (40, 40, 200))):
        (data / cls).mkdir(parents=True)
        for i in range(4):
            img = np.clip(rng.normal(0, 25, (256, 256, 3)) + colour, 0, 255).astype(np.uint8)
            Image.fromarray(img).save(data / cls / f"{cls}{i}.png")
    path, acc = train_classifier(data, tmp_path / "cls", steps=30, batch_size=8, progress=False)
    assert acc == 1.0
    model = SceneClassifier.from_pretrained(path)
    assert model.classes == ["blue", "red"]
    code, _, err = cli("eval", "--data", data, "--split", "all", "--codecs", "jpeg", "--classifier", path,
                       "--out", tmp_path / "res")
    assert code == 0, err
    summary = (tmp_path / "res" / "summary.md").read_text()
    assert "top-1" in summary and "FD-UCM" in summary and "on the originals: 1.000" in summary
    rows = json.loads((tmp_path / "res" / "per_image.json").read_text())
    assert all(isinstance(r["top1"], bool) for r in rows)
