"""Errors that the command line turns into a one-line message and a non-zero exit.

Exit statuses: 2 bad input (:class:`InputError`), 3 bad bitstream (:class:`BitstreamError`: the
container's and the entropy decoder's own errors only), 4 bad model (:class:`ModelError`); any
other exception is a bug and exits 70 (internal error).
"""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type name if empty), cut to ``limit``."""
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:limit]


def sanitize(text: str, limit: int = 1000) -> str:
    """``text`` made safe for one terminal line: every non-printable character (newlines, tabs,
    ANSI escape sequences, other C0/C1 controls, Unicode line separators) is written as a Python
    escape (``\\n``, ``\\x1b``, ``\\u2028``), and the result is cut to ``limit`` characters."""
    out = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in str(text))
    return out if len(out) <= limit else out[: limit - 3] + "..."


class CosmicError(Exception):
    """Base class: the message is meant for the user, on one line."""

    exit_code = 1


class InputError(CosmicError):
    """A file or argument given by the user cannot be used."""

    exit_code = 2


class BitstreamError(CosmicError):
    """A .cosmic file is malformed, truncated, corrupt, or from another model / format."""

    exit_code = 3


class EntropyDecodeError(BitstreamError):
    """The entropy decoder could not decode a tile's rANS strings (or they decode to nonsense)."""


class ModelError(CosmicError):
    """A model directory or weights file cannot be used."""

    exit_code = 4
