"""Progress bars as plain lines where stderr is not a terminal (issue 33 item 11)."""

from __future__ import annotations

import io

from cosmic.utils.progress import progress_bar


def test_plain_lines_each_tenth_with_the_postfix_and_no_carriage_return():
    log = io.StringIO()
    bar = progress_bar(total=20, desc="stage1", file=log, dynamic_ncols=True)
    for i in range(20):
        bar.set_postfix(loss=f"{1 / (i + 1):.3f}")
        bar.update(1)
    bar.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 11  # the first step, then each tenth
    assert lines[-1].startswith("stage1: 20/20 it (") and lines[-1].endswith("loss=0.050)")
    items = io.StringIO()
    assert list(progress_bar(range(250), desc="images", file=items)) == list(range(250))
    assert items.getvalue().splitlines()[-1].startswith("images: 250/250 it")
    quiet = io.StringIO()
    progress_bar(total=5, file=quiet, disable=True).update(5)
    assert quiet.getvalue() == ""
