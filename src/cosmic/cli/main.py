"""The entry point: run a command, map every failure to one line and a documented exit status."""

from __future__ import annotations

import os
import sys

import typer

from cosmic.cli import codec, info, evaluate, train  # noqa: F401  (each module registers its commands)
from cosmic.cli.app import ARGV, app, clean
from cosmic.errors import CosmicError, InputError


def _click_exception() -> type:
    """click's ClickException as typer uses it (typer bundles its own click in ``typer._click``)."""
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def _usage_error(exc) -> int:
    """click's own message (with its "did you mean") on one line; its exit status (2)."""
    ctx = getattr(exc, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    message = " ".join(exc.format_message().split())
    if message:  # empty after the help of a bare `cosmic` / `cosmic train`
        typer.echo(f"cosmic: error: {clean(message)}{hint}", err=True)
    return exc.exit_code


def _internal_error(exc: Exception) -> int:
    if os.environ.get("COSMIC_DEBUG"):
        raise exc
    from cosmic.errors import first_line

    typer.echo(f"cosmic: internal error: {type(exc).__name__}: {clean(first_line(exc, 300))} "
               "(COSMIC_DEBUG=1 shows more)", err=True)
    return 70


def _command():
    """The click command of :data:`app`, its boolean flags (``--help`` included) shown in ``--help``
    without the ``<bool>`` type column typer prints for every option (a flag takes no value)."""
    command = typer.main.get_command(app)
    _hide_flag_types(command, None)
    return command


def _hide_flag_types(command, parent) -> None:
    ctx = command.context_class(command, parent=parent, info_name=command.name)
    for param in [*command.params, command.get_help_option(ctx)]:
        if param is not None and getattr(param, "is_flag", False):
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        _hide_flag_types(sub, ctx)


def main(argv: list[str] | None = None) -> None:
    """Entry point; ``argv`` (without the program name) defaults to ``sys.argv[1:]``. Exit
    statuses: 2 usage or input, 3 bitstream, 4 model, 70 internal error, 130 interrupted, 143
    terminated (SIGTERM; partial outputs are removed as on Ctrl-C)."""
    import warnings

    # compressai's import-time torch.jit.script notice is noise for a command-line user.
    warnings.filterwarnings("ignore", message=r"`torch.jit.script` is deprecated", category=FutureWarning)
    ARGV[:] = list(sys.argv[1:] if argv is None else argv)
    previous = _on_sigterm()
    try:
        rc = _run(argv)
    finally:
        _restore_sigterm(previous)
    if isinstance(rc, int) and rc:
        sys.exit(rc)


def _run(argv: list[str] | None) -> int:
    """Run the command; every way it can end mapped to its exit status (never a traceback)."""
    try:
        return _command()(args=argv, prog_name="cosmic", standalone_mode=False)
    except CosmicError as exc:
        return _report_error(exc)
    except Terminated:
        typer.echo("cosmic: terminated", err=True)
        return 143
    except KeyboardInterrupt:
        typer.echo("cosmic: interrupted", err=True)
        return 130
    except (typer.Exit, SystemExit) as exc:
        return getattr(exc, "exit_code", getattr(exc, "code", 0))
    except typer.Abort:
        return 1
    except Exception as exc:  # never a traceback for the user
        return _usage_error(exc) if isinstance(exc, _click_exception()) else _internal_error(exc)


def _report_error(exc: CosmicError) -> int:
    """A library error as the CLI's one line; its exit status. Under torchrun (``RANK`` set) only
    rank 0 reports bad input: every rank parses the same options (a bad ``--config`` gave one
    error per process above torchrun's own failure report); the others exit with the same status."""
    from cosmic.errors import cli_terms

    if not isinstance(exc, InputError) or os.environ.get("RANK", "0") == "0":
        typer.echo(f"cosmic: error: {clean(cli_terms(str(exc)))}", err=True)
    return exc.exit_code



class Terminated(BaseException):
    """SIGTERM, raised like Ctrl-C so that every writer's cleanup removes its ``*.partial``."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


def _on_sigterm():
    """Turn SIGTERM into :class:`Terminated` (main thread only); returns the previous handler."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    return signal.SIG_DFL if previous is None else previous  # None: a handler set outside Python


def _restore_sigterm(previous) -> None:
    import signal

    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


