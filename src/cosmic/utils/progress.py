"""Progress bars that suit where they are written (issue 33 item 11).

On a terminal :class:`progress_bar` is tqdm's bar. Anywhere else (a log file, a pipe, a batch
scheduler's captured stderr) a redrawn bar is a stream of carriage returns, so there it prints
plain lines instead: one each time another tenth of the work is done (every
:data:`UNSIZED_EVERY` steps when the total is unknown), and one at the end. It is a drop-in for
``tqdm`` (``from cosmic.utils.progress import progress_bar as tqdm``): same arguments, ``update``,
iteration, ``set_postfix``, ``write``.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

__all__ = ["progress_bar", "UNSIZED_EVERY"]

#: without a total, a plain-line bar prints every this many steps
UNSIZED_EVERY = 100


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class progress_bar(tqdm):  # noqa: N801 - a drop-in for tqdm, named like it
    """tqdm on a terminal; plain lines, no carriage returns, anywhere else (see the module doc)."""

    def __init__(self, iterable=None, *args, **kwargs):
        stream = kwargs.get("file") or sys.stderr
        self._plain = not kwargs.get("disable", False) and not _is_terminal(stream)
        if self._plain:
            kwargs["disable"] = True  # tqdm draws nothing; this class prints the lines
        super().__init__(iterable, *args, **kwargs)
        if self._plain:
            self._stream, self._done, self._said, self._t0 = stream, kwargs.get("initial", 0) or 0, -1, time.monotonic()
            self._label = kwargs.get("desc") or "progress"
            self._total = kwargs.get("total", len(iterable) if hasattr(iterable, "__len__") else None)
            self._unit = kwargs.get("unit", "it")

    def __iter__(self):
        if not self._plain:
            yield from super().__iter__()
            return
        for item in self.iterable:
            yield item
            self.update(1)

    def update(self, n=1):
        if not self._plain:
            return super().update(n)
        self._done += n
        mark = (10 * self._done // self._total) if self._total else self._done // UNSIZED_EVERY
        if mark > self._said:
            self._said = mark
            self._say()
        return None

    def _say(self) -> None:
        of = f"/{self._total}" if self._total else ""
        post = f", {self.postfix}" if getattr(self, "postfix", None) else ""  # set_postfix (a loss, a rate)
        self._stream.write(f"{getattr(self, 'desc', None) or self._label}: {self._done}{of} {self._unit} "
                           f"({time.monotonic() - self._t0:.1f} s{post})\n")
        self._stream.flush()

    def close(self):
        if getattr(self, "_plain", False) and self._said != "closed":
            if self._done and (self._total is None or 10 * self._done // self._total != self._said):
                self._say()
            self._said = "closed"
        return super().close()
