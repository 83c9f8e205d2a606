"""Issue 33 item 9: training pitfalls.

* Re-running into the same ``--out`` with another ``--preset`` failed inside the weights' loading
  (exit 70, a state_dict mismatch); a changed ``--lmbda`` resumed silently. Now both are one-line
  errors (exit 2) before anything loads; what only says how long or how fast to run may change.
* Without a SPLITS.json the validation images are the training images; the trainer says so.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from cosmic.errors import InputError
from cosmic.training.checkpoint import check_resume


@pytest.fixture()
def fake_runs(monkeypatch):
    """Stage 1 and 2 'train' by writing the checkpoint state a real run writes (no networks)."""
    from cosmic.training import distributed

    launched = []

    def launch(train, cfg, resume, progress):
        last = __import__("pathlib").Path(cfg.out) / "last"
        last.mkdir(parents=True, exist_ok=True)
        if not (last / "trainer.json").is_file():
            (last / "trainer.json").write_text(json.dumps({"step": 1, "config": asdict(cfg)}))
        launched.append(cfg)
        return last

    monkeypatch.setattr(distributed, "launch", launch)
    return launched


def test_another_preset_or_lmbda_is_refused_before_loading(cli, one_line_error, tiny_data, tmp_path, fake_runs):
    out = tmp_path / "run"
    base = ("train", "stage1", "--data", tiny_data, "--out", out, "--preset", "small", "--lmbda", "0.01")
    assert cli(*base, "--steps", "10")[0] == 0 and len(fake_runs) == 1
    code, _, err = cli(*base[:-4], "--preset", "paper", "--lmbda", "0.01", "--steps", "10")
    one_line_error(code, err, "--preset small (now paper)", "new --out")
    assert code == 2
    code, _, err = cli(*base[:-2], "--lmbda", "0.02", "--steps", "10")
    one_line_error(code, err, "--lmbda 0.01 (now 0.02)")
    assert len(fake_runs) == 1  # neither started
    assert cli(*base, "--steps", "20", "--threads", "1", "--batch-size", "4")[0] == 0  # run control may change
    assert cli(*base[:-2], "--lmbda", "0.02", "--no-resume", "--steps", "10")[0] == 0  # starting over is asked for
    assert len(fake_runs) == 3


def test_check_resume_compares_json_values(tmp_path):
    last = tmp_path / "last"
    last.mkdir()
    (last / "trainer.json").write_text(json.dumps({"config": {"rate_lambdas": [0.1, 0.2], "steps": 5, "old": 1}}))
    check_resume(last, {"rate_lambdas": (0.1, 0.2), "steps": 9, "new_option": True})  # a tuple is its list
    with pytest.raises(InputError, match=r"--rate-lambdas \[0.1, 0.2\] \(now \[0.1, 0.3\]\)"):
        check_resume(last, {"rate_lambdas": (0.1, 0.3)})
    check_resume(tmp_path / "none", {"anything": 1})  # no checkpoint: nothing to check
    (last / "trainer.json").write_text("{cut")
    with pytest.raises(InputError, match="not a readable checkpoint state"):
        check_resume(last, {})


def test_validation_on_training_images_is_said(cli, tmp_path, fake_runs):
    from helpers import golden_image
    from PIL import Image

    data = tmp_path / "nosplits"
    data.mkdir()
    Image.fromarray(golden_image(128, 128)).save(data / "a.png")
    code, _, err = cli("train", "stage1", "--data", data, "--out", tmp_path / "r", "--steps", "1")
    assert code == 0
    assert "no SPLITS.json" in err and "validation" in err and "training images" in err


def test_a_bad_config_under_torchrun_is_one_line_from_rank_0_only(cli, one_line_error, tiny_data, tmp_path,
                                                                   monkeypatch):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"lmbda": 0.01, "bogus": 1}))
    args = ("train", "stage1", "--data", tiny_data, "--out", tmp_path / "r", "--config", bad)
    monkeypatch.setenv("RANK", "1")
    code, out, err = cli(*args)
    assert code == 2 and err == "" and out == ""  # the other ranks exit quietly with the same status
    monkeypatch.setenv("RANK", "0")
    code, _, err = cli(*args)
    one_line_error(code, err, "--config", "bogus")


def test_tensorboard_is_installed_by_make_install_or_its_absence_said(tmp_path, monkeypatch, capsys):
    import builtins
    import re

    from helpers import REPO

    from cosmic.training.metrics_log import MetricsLog

    assert re.search(r'^train = \[.*"tensorboard', (REPO / "pyproject.toml").read_text(), re.M)
    assert re.search(r"-e '\.\[dev,train[],]", (REPO / "Makefile").read_text())  # make install takes the train extra
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name == "torch.utils.tensorboard":
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    MetricsLog(tmp_path).close()
    err = capsys.readouterr().err
    assert "no TensorBoard log" in err and "cosmic[train]" in err and "metrics.csv" in err
