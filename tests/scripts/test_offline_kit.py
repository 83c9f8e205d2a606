"""The offline GPU kit (issue 31): the wheelhouse's install step, the tracked-tree budget, and
scripts/train_on_device.sh end to end in an environment that has torch, torchvision and numpy but
none of cosmic's other dependencies, installing only from a wheelhouse (pip --no-index)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, golden_image, load_script
from PIL import Image
from safetensors import safe_open

from cosmic.training.datapack import write_pack

WHEELHOUSE = load_script(REPO / "scripts" / "wheelhouse.py")
TRAVEL = load_script(REPO / "scripts" / "travel_size.py")
TREE_BUDGET_MIB = 48.0


def test_tracked_tree_stays_under_its_budget():
    """What travels to a GPU machine is capped at 64 MiB; the tracked tree keeps 16 MiB of it
    for the wheels and the data pack (docs/results summaries only, one campaign snapshot)."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    size = TRAVEL.size_of(TRAVEL.git_files()) / 2**20
    assert 5.0 < size < TREE_BUDGET_MIB, f"tracked tree {size:.1f} MiB"
    campaign = [p for p in TRAVEL.git_files("training/campaign") if p.endswith("model_index.json")]
    assert campaign == ["training/campaign/latest/model_index.json"]


def test_trainer_wheels_leave_torch_and_what_the_target_has():
    chosen = WHEELHOUSE._selection("trainer", "3.12", {"scipy"})
    assert {"compressai", "pytorch-msssim", "safetensors"} <= chosen
    assert not chosen & {"torch", "torchvision", "numpy", "pillow", "scipy", "diffusers", "rasterio"}
    everything = WHEELHOUSE._selection("all", "3.12", set())
    assert {"compressai", "diffusers", "rasterio", "pyproj", "pvlib", "imagecodecs"} <= everything
    assert not everything & {"torch", "torchvision", "numpy", "triton"}


def test_install_refuses_a_missing_wheelhouse_and_torch(tmp_path):
    script = str(REPO / "scripts" / "wheelhouse.py")
    run = subprocess.run([sys.executable, script, "install", str(tmp_path / "none"), str(tmp_path / "t")],
                         capture_output=True, text=True)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "never downloads" in run.stderr
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "torch-9.0-py3-none-any.whl").write_bytes(b"")
    run = subprocess.run([sys.executable, script, "install", str(tmp_path / "w"), str(tmp_path / "t")],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "never installed from a wheelhouse" in run.stderr
    run = subprocess.run(["bash", str(REPO / "scripts" / "train_on_device.sh"), str(tmp_path / "o")],
                         capture_output=True, text=True, env={**os.environ, "COSMIC_KIT": str(tmp_path / "none")})
    assert run.returncode == 2 and "no wheelhouse" in run.stderr and "Traceback" not in run.stderr


def _torch_only_python(tmp_path: Path) -> Path:
    """A new venv that sees torch, torchvision, numpy and what they need (linked from this one)
    and nothing else of ours."""
    import importlib.metadata as md

    env = tmp_path / "bare"
    venv.create(env, with_pip=True)
    linked = tmp_path / "torch-only"
    linked.mkdir()
    for name in WHEELHOUSE.closure(["torch", "torchvision", "numpy"], "3.11"):
        dist = md.distribution(name)
        for top in {Path(str(f)).parts[0] for f in dist.files or []} - {"..", "bin"}:
            source = Path(dist.locate_file(top))
            if source.exists() and not (linked / top).exists():
                (linked / top).symlink_to(source)
    site = next((env / "lib").glob("python3*/site-packages"))
    (site / "torch-only.pth").write_text(str(linked) + "\n")
    return env / "bin" / "python"


def _tiny_kit(tmp_path: Path) -> Path:
    """The trainer's wheels for this Python (downloaded here, as `make device-kit` does for 3.12)
    and a pack of a few 128-px images."""
    kit = tmp_path / "kit"
    WHEELHOUSE.download(kit / "wheels", "trainer", None, set())
    root = tmp_path / "ucm"
    root.mkdir()
    names = [f"im{i}.png" for i in range(4)]
    for i, name in enumerate(names):
        Image.fromarray(np.roll(golden_image(128, 128), 9 * i, axis=0)).save(root / name)
    (root / "SPLITS.json").write_text(json.dumps({"train": names[:2], "train_extra": names[2:3], "val": names[3:]}))
    write_pack(root, kit / "ucm-pack.zip", val_images=1)
    return kit


@pytest.mark.slow
def test_train_on_device_installs_offline_trains_validates_and_resumes(tmp_path):
    python = _torch_only_python(tmp_path)
    probe = subprocess.run([str(python), "-c", "import torch, torchvision, numpy\ntry:\n import compressai\n"
                            "except ImportError: print('bare')"], capture_output=True, text=True)
    assert probe.stdout.strip() == "bare", probe.stderr
    kit = _tiny_kit(tmp_path)
    env = {**os.environ, "PYTHON": str(python), "COSMIC_KIT": str(kit), "COSMIC_DEVICE": "cpu", "COSMIC_STEPS": "2",
           "COSMIC_BATCH": "2", "COSMIC_MINUTES": "5", "COSMIC_CROP": "128", "PIP_NO_INDEX": "1", "COSMIC_PACK_CACHE": str(tmp_path / "c"),
           "PYTHONPATH": ""}
    out, script = tmp_path / "run", str(REPO / "scripts" / "train_on_device.sh")
    first = subprocess.run(["bash", script, str(out)], env=env, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    report = json.loads((out / "export" / "report.json").read_text())
    assert report["steps"] == 2 and report["batch_size"] == 2 and not report["resumed"]
    assert [r["quality"] for r in report["before"]] == [1.0, 3.5, 6.0] and report["after"][0]["bpp"] > 0
    weights = out / "export" / "weights"
    for f in weights.rglob("*.safetensors"):
        assert f.stat().st_size < 16 * 2**20
        with safe_open(str(f), "pt") as st:
            assert {str(st.get_tensor(k).dtype) for k in st.keys() if "weight" in k} == {"torch.float16"}
    second = subprocess.run(["bash", script, str(out)], env={**env, "COSMIC_STEPS": "4"}, capture_output=True,
                            text=True, timeout=900)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    report = json.loads((out / "export" / "report.json").read_text())
    assert report["resumed"] and report["steps"] == 2 and report["cycle_step"] == 4
    assert (out / "export" / "train.log").read_text().count('"steps_per_s"') == 2
