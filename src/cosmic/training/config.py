"""Training configuration files: ``cosmic train stage1 --config run.yaml`` (or ``.json``).

The keys are the trainer's config fields (:class:`~cosmic.training.stage1.Stage1Config`,
:class:`~cosmic.training.stage2.Stage2Config`), which are the command's option names with ``_``
for ``-`` (``batch_size`` or ``batch-size``); list options are lists (``rate_lambdas: [0.001,
0.004]``). Options given on the command line override the file. Every run writes the complete
config it used as ``OUT/stage1_config.json`` (``stage2_config.json``), which ``--config`` reads
back: the same run again, or a variant with a few flags changed.

YAML needs PyYAML (``pip install cosmic[train]``); JSON needs nothing.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from cosmic.errors import InputError

__all__ = ["load_config", "write_config", "merge_config"]


def load_config(path: str | os.PathLike) -> dict:
    """The mapping in a JSON or YAML file (keys with ``-`` normalised to ``_``); InputError for a
    missing, unreadable or non-mapping file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"--config {path}: no such file")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise InputError(f"--config {path}: YAML needs PyYAML (pip install 'cosmic[train]'), "
                             "or write the file as JSON") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InputError(f"--config {path}: not valid YAML ({_first_line(exc)})") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"--config {path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise InputError(f"--config {path}: expected a mapping of option names to values")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def merge_config(config_class, cli: dict, file_values: dict, explicit: set[str]) -> dict:
    """Constructor arguments of ``config_class``: ``file_values`` over the command line's
    defaults, the options given explicitly on the command line (``explicit``) over both. An
    unknown key in the file is an InputError naming the valid ones."""
    fields = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(file_values) - fields)
    if unknown:
        raise InputError(f"--config: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(fields))}")
    merged = dict(cli)
    for key, value in file_values.items():
        if key not in explicit:
            merged[key] = value
    return merged


def write_config(path: str | os.PathLike, values: dict) -> Path:
    """Write the config a run used (JSON, atomically); ``load_config`` reads it back."""
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(values, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
