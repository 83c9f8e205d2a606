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
    """Base class: the message is meant for the user, on one line, in the API as on the command
    line: a text argument is :func:`sanitize`-d (a file name or a header field may carry newlines
    or escape sequences)."""

    exit_code = 1

    def __init__(self, *args):
        super().__init__(*(sanitize(a) if isinstance(a, str) else a for a in args))


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


class CosmicWarning(UserWarning):
    """What the command line prints as a ``note:`` line (a conversion made, alpha dropped, a
    stretch chosen), issued by the Python API as a warning."""


#: the Python API's parameters that are command-line options too: ``name=`` in a library message
#: reads ``--name`` on the command line (:func:`cli_terms`)
API_OPTIONS = ("quality", "bpp", "max_bytes", "tile", "bands", "band_groups", "scale", "steps", "seed",
               "dtype", "model", "window", "reduce")


def cli_terms(message: str) -> str:
    """A library message in the command line's terms: each ``name=value`` of an API parameter in
    :data:`API_OPTIONS` becomes ``--name value`` (``scale='auto'`` -> ``--scale auto``,
    ``scale=(low, high)`` -> ``--scale low,high``, ``max_bytes=0`` -> ``--max-bytes 0``); a bare
    ``name=`` (no value) becomes ``--name``; ``mask=False`` / ``derive=False`` become ``--no-mask`` /
    ``--no-derive``. The library speaks in parameter names, the CLI in flags."""
    import re

    message = re.sub(r"\b(mask|derive)=False\b", r"--no-\1", message)

    def flag(m: re.Match) -> str:
        option = "--" + m[1].replace("_", "-")
        if m[2] is not None:
            return f"{option} {m[2]}"
        if m[3] is not None:
            return f"{option} {m[3].replace(', ', ',')}"
        return option + ("" if m[4] is None else " ")

    names = "|".join(API_OPTIONS)
    return re.sub(rf"\b({names})=(?:'([^']*)'|\(([^)]*)\)|(?=([^\s,;:.)]))|)", flag, message)
