"""`cosmic train ...` options are generated from the trainers' config dataclasses (issue 32 item 3):
one option per field, the field's default, its help beside the dataclass; --config merges under
explicit flags."""

from __future__ import annotations

import dataclasses

import click
import pytest
import typer

from cosmic.cli.main import app
from cosmic.training.config import (CODEBOOK_HELP, ENHANCE_HELP, STAGE1_HELP, STAGE2_HELP, CodebookConfig,
                                    EnhanceConfig, Stage1Config, Stage2Config)


def _command(name: str) -> click.Command:
    return typer.main.get_command(app).commands["train"].commands[name]


@pytest.mark.parametrize("name, config, help_texts, skip", [
    ("stage1", Stage1Config, STAGE1_HELP, ()), ("stage2", Stage2Config, STAGE2_HELP, ()),
    ("codebook", CodebookConfig, CODEBOOK_HELP, ("bands",)), ("enhance", EnhanceConfig, ENHANCE_HELP, ("bpp_range",))])
def test_every_field_is_an_option_with_its_default(name, config, help_texts, skip):
    params = {p.name: p for p in _command(name).params}
    for f in dataclasses.fields(config):
        if f.name in skip:
            continue
        assert f.name in params, f.name
        default = f.default if f.default is not dataclasses.MISSING else None
        if f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
            default = ",".join(f"{v:g}" if isinstance(value, list) else str(v)
                               for v in (value.values() if isinstance(value, dict) else value))
        if f.name != "out":  # a run directory default the dataclass does not have
            assert params[f.name].default == default, f.name
        assert help_texts.get(f.name), f"{name}: no help for {f.name}"


def test_channels_last_default_is_the_configs_and_flags_keep_their_names():
    params = {p.name: p for p in _command("stage1").params}
    assert params["channels_last"].default is True  # it had drifted to False in the hand-typed CLI
    assert params["ground_only"].opts == ["--ground-only"] and not params["ground_only"].secondary_opts
    assert params["cams"].secondary_opts == ["--no-cams"]
    stage2 = {p.name: p for p in _command("stage2").params}
    assert stage2["use_metadata"].secondary_opts == ["--no-metadata"]


def test_explicit_flags_override_the_config_file(tmp_path, tiny_data):
    from cosmic.cli.fields import config_values

    (tmp_path / "run.json").write_text(f'{{"data": "{tiny_data}", "lmbda": 0.5, "steps": 7, '
                                       '"rate_lambdas": [0.001, 0.01]}')
    command = _command("stage1")
    ctx = command.make_context("stage1", ["--config", str(tmp_path / "run.json"), "--steps", "3",
                                          "--val-qualities", "1,2"])
    values = config_values(Stage1Config, ctx, ctx.params)
    assert values["steps"] == 3 and values["lmbda"] == 0.5 and values["rate_lambdas"] == [0.001, 0.01]
    assert values["val_qualities"] == [1.0, 2.0] and values["data"] == str(tiny_data)
    Stage1Config(**values)
