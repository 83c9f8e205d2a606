"""The ``cosmic`` command line (typer): parsing and printing only; the work is the pipelines'.

Every failure the user can cause ends in one line on stderr and a non-zero exit status:
2 bad input, 3 bad bitstream, 4 bad model, 70 internal error (set COSMIC_DEBUG=1 for the traceback);
130 interrupted, 143 terminated (SIGTERM), with the partial output removed in both cases.

Modules: :mod:`~cosmic.cli.app` (the Typer apps, shared helpers), :mod:`~cosmic.cli.options`
(shared option declarations), :mod:`~cosmic.cli.codec` (compress, decompress, enhance),
:mod:`~cosmic.cli.info` (info, flops, models), :mod:`~cosmic.cli.evaluate` (demo, compare, eval,
export, data), :mod:`~cosmic.cli.train` (train ...), :mod:`~cosmic.cli.main` (the entry point).
"""

from cosmic.cli.app import DEFAULT_MODEL_NAME, app
from cosmic.cli.main import main

__all__ = ["DEFAULT_MODEL_NAME", "app", "main"]
