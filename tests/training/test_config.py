"""`cosmic train stage1 --config run.yaml`: the file's keys are the flags, flags override it, the
run writes the config it used and that file reads back; the loss goes to metrics.csv."""

from __future__ import annotations

import json

import pytest

from cosmic.training.config import load_config
from cosmic.training.metrics_log import read_metrics


@pytest.fixture()
def tiny_preset(monkeypatch):
    import cosmic.models.registry as reg

    monkeypatch.setitem(reg.PRESETS, "small", {"N": 16, "M": 16, "ground_channels": 8, "latent_channels": 4})


def test_config_file_flags_override_and_read_back(cli, tiny_data, tmp_path, tiny_preset):
    out = tmp_path / "run"
    (tmp_path / "run.yaml").write_text(
        f"data: {tiny_data}\nout: {out}\nsteps: 3\nbatch-size: 2\ncrop: 64\nlmbda: 0.01\n"
        "val_every: 1000000\ncheckpoint_every: 1\nlog_every: 1\ndevice: cpu\n")
    code, _, err = cli("train", "stage1", "--config", tmp_path / "run.yaml", "--steps", "1")
    assert code == 0, err
    used = load_config(out / "stage1_config.json")
    assert used["steps"] == 1 and used["crop"] == 64 and used["batch_size"] == 2 and used["lmbda"] == 0.01
    assert used["data"] == str(tiny_data) and used["precision"] == "fp32"
    # the written file is a config: the same run, continued to step 3 with one flag changed
    code, _, err = cli("train", "stage1", "--config", out / "stage1_config.json", "--steps", "3")
    assert code == 0, err
    state = json.loads((out / "last" / "trainer.json").read_text())
    assert state["step"] == 3 and state["config"]["crop"] == 64
    losses = [(s, v) for s, n, v in read_metrics(out / "metrics.csv") if n == "train/loss"]
    assert [s for s, _ in losses] == [1, 2, 3] and all(v > 0 for _, v in losses)


@pytest.mark.parametrize("text, needle", [
    ('{"data": "x", "stepz": 3}', "unknown key(s) stepz"),
    ("[1, 2]", "expected a mapping"),
    ('{"data": ', "not valid JSON"),
])
def test_bad_config_is_one_line(cli, tmp_path, one_line_error, text, needle):
    (tmp_path / "run.json").write_text(text)
    code, _, err = cli("train", "stage1", "--config", tmp_path / "run.json")
    one_line_error(code, err, needle)
    assert code == 2


def test_missing_data_and_bad_device(cli, tmp_path, one_line_error, tiny_data):
    code, _, err = cli("train", "stage1")
    one_line_error(code, err, "--data")
    code, _, err = cli("train", "stage1", "--data", tiny_data, "--out", tmp_path / "r", "--device", "tpu")
    one_line_error(code, err, "--device tpu")
