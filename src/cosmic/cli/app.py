"""The ``cosmic`` command line's Typer apps and the helpers every command module shares
(options checked into one-line :class:`~cosmic.errors.InputError` s, notes, terminal-safe text)."""

from __future__ import annotations

from pathlib import Path

import typer

from cosmic.errors import InputError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="COSMIC: learned satellite image compression with a lightweight on-board encoder.",
)
train_app = typer.Typer(no_args_is_help=True, help="Train models.")
app.add_typer(train_app, name="train")
data_app = typer.Typer(no_args_is_help=True, help="Build evaluation data sets.")
app.add_typer(data_app, name="data")
export_app = typer.Typer(no_args_is_help=True, help="Export the on-board encoder for embedded runtimes.")
app.add_typer(export_app, name="export")


def _version(value: bool) -> None:
    if value:
        from cosmic import __version__

        typer.echo(f"cosmic {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the version and exit")) -> None:
    """COSMIC: learned satellite image compression with a lightweight on-board encoder."""


DEFAULT_MODEL_NAME = "cosmic-small-vr"  # = cosmic.zoo.DEFAULT_MODEL (not imported: keeps start-up light)
ARGV: list[str] = []  # the command line, for reports that quote the command that made them


def int_list(option: str, text: str, example: str) -> list[int]:
    """A comma-separated list of integers (``--steps 5,10,25``), or a one-line InputError."""
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"{option} {text!r}: expected numbers such as {example}") from None


def set_threads(n: int) -> None:
    if n > 0:
        import torch

        torch.set_num_threads(n)


def note(msg: str) -> None:
    from cosmic.errors import cli_terms

    typer.echo(f"note: {clean(cli_terms(msg))}", err=True)


def check_output(path: Path, source: Path | None = None) -> None:
    if not path.parent.exists():
        raise InputError(f"{path.parent}: output directory does not exist")
    if path.is_dir():
        raise InputError(f"{path}: is a directory")
    if source is not None and path.exists() and source.exists() and path.resolve() == source.resolve():
        raise InputError(f"{path}: output would overwrite the input")




def clean(message) -> str:
    """A message made safe for one terminal line (see :func:`cosmic.errors.sanitize`)."""
    from cosmic.errors import sanitize

    return sanitize(str(message))

