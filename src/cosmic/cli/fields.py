"""Typer options generated from a trainer's config dataclass (issue 32 item 3: not re-typed).

:func:`config_command` gives a command one option per field of the config class: the flag is the
field's name with ``-`` for ``_``, the default the field's, the type its annotation's, the help
the text in the dict beside the dataclass (``STAGE1_HELP`` ...). A field without a default
(``data``, ``out``) becomes an optional option, required after the ``--config`` file is merged
(:func:`cosmic.training.config.merge_config`; explicit flags override the file). List fields of
numbers are comma-separated text (``--rate-lambdas 0.002,0.02``); list fields of paths repeat
(``--extra-data a --extra-data b``); :func:`config_values` turns the command's values back into
the config's.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from pathlib import Path
from typing import Optional

import typer

from cosmic.errors import InputError

__all__ = ["config_command", "config_values", "list_fields"]

_KW = inspect.Parameter.KEYWORD_ONLY


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def _base(hint) -> tuple[object, bool]:
    """(the type without ``None``, whether None was allowed)."""
    args = typing.get_args(hint)
    if type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return hint, False


def list_fields(config_class) -> dict[str, type]:
    """Fields holding lists of numbers (given as comma-separated text): name -> element type."""
    hints = typing.get_type_hints(config_class)
    found = {}
    for f in dataclasses.fields(config_class):
        base, _ = _base(hints[f.name])
        if base is list or typing.get_origin(base) is list:
            element = (typing.get_args(base) or (float,))[0]
            if element in (int, float):
                found[f.name] = element
    return found


def _option(f: dataclasses.Field, hint, help_text: str | None, decls: tuple, default=None,
            panel: str | None = None) -> inspect.Parameter:
    """One field as a typer option parameter (in the help's ``panel``)."""
    base, optional = _base(hint)
    value, metavar = (_default(f) if default is None else default), None
    if base is dict or typing.get_origin(base) is dict:  # counts per key, in the default's key order
        annotation, value = str, ",".join(str(v) for v in value.values())
    elif base is list or typing.get_origin(base) is list:
        element = (typing.get_args(base) or (float,))[0]
        if element in (int, float):
            annotation = Optional[str]
            value = ",".join(f"{v:g}" for v in value) if value else None
        else:
            annotation, metavar = Optional[list[Path]], "PATH"
    elif f.name in ("data", "out", "init_from", "stage1"):
        annotation = Optional[str] if value is None else str
    else:
        annotation = Optional[base] if optional or value is None else base
    return inspect.Parameter(f.name, _KW, annotation=annotation,
                             default=typer.Option(value, *decls, help=help_text, show_default=value is not None,
                                                  metavar=metavar, rich_help_panel=panel))


def config_command(config_class, help_texts: dict[str, str], *, flags: dict[str, tuple] | None = None,
                   defaults: dict | None = None, skip: tuple = (), extra: dict | None = None,
                   panels: dict[str, str] | None = None):
    """A decorator giving ``fn(ctx, **options)`` the signature typer reads: ``ctx``, one option per
    field of ``config_class`` (minus ``skip``), then ``extra`` (name -> (annotation, typer.Option)).
    ``flags``: custom flag declarations per field (``{"ground_only": ("--ground-only",)}``);
    ``defaults``: defaults for fields that have none (``{"out": "runs/stage1"}``); ``panels``: the
    help panel of a field (the others: Options)."""
    hints = typing.get_type_hints(config_class)
    params = [inspect.Parameter("ctx", _KW, annotation=typer.Context)]
    for f in dataclasses.fields(config_class):
        if f.name not in skip:
            params.append(_option(f, hints[f.name], help_texts.get(f.name), (flags or {}).get(f.name, ()),
                                  (defaults or {}).get(f.name), (panels or {}).get(f.name)))
    for name, (annotation, option) in (extra or {}).items():
        params.append(inspect.Parameter(name, _KW, annotation=annotation, default=option))

    def decorate(fn):
        fn.__signature__ = inspect.Signature(params)
        fn.__annotations__ = {p.name: p.annotation for p in params}
        return fn

    return decorate


def config_values(config_class, ctx: typer.Context, options: dict, drop: tuple = ("config", "resume"),
                  folder: bool = False) -> dict:
    """The config's values of a command's options merged with its ``--config`` file (explicit flags
    over the file over the defaults): paths as text, comma lists parsed; ``--data`` checked (a
    folder when ``folder``; else a folder, a data pack or shards)."""
    from cosmic.training.config import load_config, merge_config

    o = {k: v for k, v in options.items() if k not in drop and k in {f.name for f in dataclasses.fields(config_class)}}
    explicit = {k for k in o if getattr(ctx.get_parameter_source(k), "name", "") in ("COMMANDLINE", "ENVIRONMENT")}
    for key, value in o.items():
        if isinstance(value, Path) or (isinstance(value, list) and value and isinstance(value[0], Path)):
            o[key] = [str(p) for p in value] if isinstance(value, list) else str(value)
    for key, element in list_fields(config_class).items():
        if isinstance(o.get(key), str):
            o[key] = _numbers(key, o[key], element)
    for f in dataclasses.fields(config_class):
        if isinstance(_default(f), dict) and isinstance(o.get(f.name), str):
            o[f.name] = _counts(f.name, o[f.name], list(_default(f)))
    if options.get("config") is not None:
        o = merge_config(config_class, o, load_config(options["config"]), explicit)
    if "data" in o and not o.get("data"):
        raise InputError("--data: give the training images (or a --config file with 'data')")
    if o.get("data") and folder and not Path(o["data"]).is_dir():
        raise InputError(f"--data {o['data']}: not a directory")
    if o.get("data") and not Path(o["data"]).exists():
        raise InputError(f"--data {o['data']}: no such directory")
    return o


def _numbers(key: str, text: str, element: type) -> list:
    flag = "--" + key.replace("_", "-")
    try:
        values = [element(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values:
        raise InputError(f"{flag} {text}: give numbers separated by commas, e.g. 1,2")
    return values


def _counts(key: str, text: str, keys: list[str]) -> dict:
    """``--steps 1500,500,600`` as ``{key: count}`` in ``keys``' order."""
    flag = "--" + key.replace("_", "-")
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if len(values) != len(keys):
        raise InputError(f"{flag} {text}: {len(keys)} whole numbers separated by commas ({', '.join(keys)})")
    return dict(zip(keys, values))
