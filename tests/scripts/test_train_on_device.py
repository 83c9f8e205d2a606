"""scripts/train_on_device.sh, run on the CPU as its header says (a GPU machine runs it the same way)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
from helpers import REPO, golden_image
from PIL import Image

from cosmic.models.cosmic import Cosmic

ROOT = REPO


import pytest


@pytest.mark.slow
def test_train_on_device_script_runs_on_cpu_and_resumes(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        Image.fromarray(np.roll(golden_image(128, 128), 9 * i, axis=0)).save(data / f"im{i}.png")
    (data / "SPLITS.json").write_text(json.dumps({"train": ["im0.png"], "val": ["im1.png"]}))
    env = {**os.environ, "COSMIC_DEVICE": "cpu", "COSMIC_PRESET": "small", "COSMIC_STEPS": "4",
           "COSMIC_DATA": str(data), "PYTHON": sys.executable, "COSMIC_MINUTES": "5"}
    out = tmp_path / "run"
    cmd = ["bash", str(ROOT / "scripts" / "train_on_device.sh"), str(out), "--batch-size", "2", "--crop", "64",
           "--pause-at", "2", "--threads", "1"]
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=600)
    assert json.loads((out / "last" / "trainer.json").read_text())["step"] == 2
    subprocess.run(cmd[:-4] + ["--threads", "1"], env=env, check=True, capture_output=True, timeout=600)
    state = json.loads((out / "last" / "trainer.json").read_text())
    assert state["step"] == 4 and state["config"]["bf16"] and state["config"]["rate_lambdas"]
    model = Cosmic.from_pretrained(out / "final")
    assert model.config["rate_levels"] == 6 and model.config["colour_space"] == "ycbcr"
