"""Rate control: the highest quality whose whole file fits a byte budget (docs/DESIGN.md §6).

A bisection on the whole scene costs one full encode per step: issue 33 measured 52 s for a
2.5 Mpx stack, with no progress, and then "encoded in 5.87 s" (the last step's time). Instead:

1. **Sample.** A scene of more than twice :func:`sample_count` tiles is represented by that many
   tiles spread evenly over its grid (edge tiles included, padded as coded), coded together as
   a one-row mosaic. A file's size at quality q is estimated as the container's own bytes plus
   the sample's mean payload times the number of payloads, and the quality whose estimate meets
   the budget is found by bisection on the sample alone (each step codes a few tiles).
2. **Verify.** The whole scene is coded at that quality; only its real size counts. A file over
   the budget, or more than ``tolerance`` under it, gives the next quality: a step along the
   sample's slope (log bytes per quality unit) from it, then, once real sizes on both sides of
   the budget are known, log-linear interpolation between them. After :data:`MAX_WHOLE_ENCODES`
   whole encodes, bisection on real sizes finishes. Only a real encode that fits is ever
   returned, so the budget is never exceeded.

A smaller scene is searched by bisection on real sizes, as before, with a bar per encode on a
terminal only (a bar there vanishes when done; in a log, lines would precede the one-line error of
an out-of-reach target). A sampled search shows progress (a bar per whole encode, one for the
sample steps). The returned scene's ``seconds`` is the whole
search's time; ``trials`` lists its whole encodes as (quality, bytes).
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np

from cosmic.errors import InputError
from cosmic.io.container import QUALITY_STEP, container_size, quantize_quality

__all__ = ["search_quality", "sample_count", "sample_scene", "MAX_WHOLE_ENCODES"]

#: whole-scene encodes guided by the sample before plain bisection on real sizes takes over
MAX_WHOLE_ENCODES = 4
#: codings of the sample (its sizes are noisy to a few percent: a rough guess is all it gives)
MAX_SAMPLE_STEPS = 6
#: at least this many tiles in a sample, and at least this fraction of the grid
MIN_SAMPLE, SAMPLE_FRACTION = 8, 1 / 8


def sample_count(tiles: int) -> int | None:
    """How many of a grid's ``tiles`` the search samples; None when the grid is small enough
    (at most twice the sample) to be searched whole."""
    count = max(MIN_SAMPLE, math.ceil(tiles * SAMPLE_FRACTION))
    return None if 2 * count >= tiles else count


def sample_scene(scene, tile: int, count: int):
    """A one-row mosaic of ``count`` tiles spread evenly over ``scene``'s grid: each mosaic tile is
    the source tile as it is coded (edge tiles padded), in every band group, with its mask."""
    from cosmic.onboard.scene import pad_tile

    cols = -(-scene.width // tile)
    grid = -(-scene.height // tile) * cols
    picks = sorted({int(round(i)) for i in np.linspace(0, grid - 1, count)})
    origin = [((k // cols) * tile, (k % cols) * tile) for k in picks]

    def read_group(top, left, h, w, group=0):
        y, x = origin[left // tile]
        block = scene.read(y, x, tile, tile) if group == 0 else scene.read_group(y, x, tile, tile, group)
        return pad_tile(block, tile)

    def read_mask(top, left, h, w):
        y, x = origin[left // tile]
        return scene.read_mask(y, x, tile, tile)

    return replace(scene, name=f"{scene.name} (sample)", width=len(origin) * tile, height=tile, read=read_group,
                   georef=None, notes=[], derived=[], close=lambda: None, read_group=read_group,
                   read_mask=read_mask if scene.read_mask is not None else None)


class _Search:
    """One rate-control search (see the module doc) of ``pipe`` on ``scene``."""

    def __init__(self, pipe, scene, tile: int, budget: int, tolerance: float, target: str, progress: bool):
        self.pipe, self.scene, self.tile, self.budget = pipe, scene, tile, budget
        self.tolerance, self.target, self.progress = tolerance, target, progress
        self.trials: list[tuple[float, int]] = []
        self.estimates: dict[float, int] = {}

    def fits(self, size: int) -> bool:
        """Within the budget and no more than the tolerance under it."""
        return (1 - self.tolerance) * self.budget <= size <= self.budget

    def whole(self, quality: float):
        """The whole scene coded at ``quality`` (a bar over its tiles when showing progress)."""
        coded = self.pipe.encode(self.scene, self.tile, quality, progress=self.progress)
        self.trials.append((coded.header.quality, coded.size))
        return coded

    def refuse(self, low=None, high=None):
        """InputError naming the real sizes at the model's lowest and highest quality."""
        lo_q, hi_q = self.pipe.quality_range
        low_size = (low or self.whole(lo_q)).size
        high_size = (high or self.whole(hi_q)).size
        px = self.scene.width * self.scene.height
        return InputError(
            f"{self.target}: out of reach for this image with '{self.pipe.name}': {low_size}..{high_size} bytes "
            f"({low_size * 8 / px:.4f}..{high_size * 8 / px:.4f} bpp)")

    def exact(self):
        """Bisection on real sizes over the whole quality range (a scene too small to sample)."""
        lo_q, hi_q = self.pipe.quality_range
        low, high = self.whole(lo_q), self.whole(hi_q)
        if low.size > self.budget or high.size < (1 - self.tolerance) * self.budget:
            raise self.refuse(low, high)
        if high.size <= self.budget:
            return high
        return self.narrow(low, lo_q, hi_q)

    def narrow(self, best, lo: float, hi: float):
        """Bisection on real sizes between a fitting ``lo`` (coded as ``best``) and an ``hi`` over
        the budget, until a file fits the tolerance or the bracket is one quality step."""
        while hi - lo > 1.5 / QUALITY_STEP and not self.fits(best.size):
            coded = self.whole((lo + hi) / 2)
            if coded.size <= self.budget:
                best, lo = coded, coded.header.quality
            else:
                hi = coded.header.quality
        return best

    # -- the sampled search -----------------------------------------------------------------------
    def start_sample(self, count: int, bar) -> None:
        """Prepare the mosaic of ``count`` tiles and what turns its payloads into a file size."""
        header = self.pipe.header(self.scene, self.tile, self.pipe.quality_range[0])
        self.mosaic, self.bar = sample_scene(self.scene, self.tile, count), bar
        self.overhead, self.payloads = container_size(header, []), header.num_tiles

    def estimate(self, quality: float) -> float:
        """The whole file's estimated size at ``quality``, from the sample's mean payload."""
        quality = quantize_quality(quality)
        if quality not in self.estimates:
            coded = self.pipe.encode(self.mosaic, self.tile, quality)
            mean = sum(map(len, coded.payloads)) / len(coded.payloads)
            self.estimates[quality] = self.overhead + mean * self.payloads
            self.bar.update(1)
        return self.estimates[quality]

    def sample_guess(self, goal: float) -> tuple[float, float]:
        """(the quality whose estimate meets ``goal``, to within the tolerance, the sample's slope
        of log bytes per quality unit near it): interpolation on log size, as rate is near log-linear in
        quality, each step kept 10-90 % inside the bracket so that it shrinks; at most
        :data:`MAX_SAMPLE_STEPS` codings of the sample (its sizes are noisy to a few percent)."""
        lo, hi = self.pipe.quality_range
        e_lo, e_hi = self.estimate(lo), self.estimate(hi)
        overall = max(math.log(e_hi / e_lo) / (hi - lo), 1e-3)
        if e_hi <= goal or e_lo > goal:
            return (hi if e_hi <= goal else lo), overall
        for _ in range(MAX_SAMPLE_STEPS - 2):
            if hi - lo <= 1.5 / QUALITY_STEP or e_lo >= (1 - self.tolerance) * goal:
                break
            t = math.log(goal / e_lo) / max(math.log(e_hi / e_lo), 1e-9)
            mid = quantize_quality(lo + min(max(t, 0.1), 0.9) * (hi - lo))
            if self.estimate(mid) <= goal:
                lo, e_lo = mid, self.estimate(mid)
            else:
                hi, e_hi = mid, self.estimate(mid)
        local = math.log(e_hi / e_lo) / (hi - lo)  # the slope near the guess, within 2x of the overall one
        return lo, min(max(local, overall / 2), overall * 2)

    def next_quality(self, best, over, goal: float, slope: float) -> float:
        """The next whole encode's quality: log-linear interpolation between the real sizes under
        (``best``) and over (``over``) the budget when both are known (kept 10-90 % inside), else
        a step along the sample's ``slope`` from the one known; always strictly inside the bracket."""
        lo_q, hi_q = self.pipe.quality_range
        lo = best.header.quality if best is not None else lo_q
        hi = over.header.quality if over is not None else hi_q
        if best is not None and over is not None:
            t = math.log(goal / best.size) / max(math.log(over.size / best.size), 1e-9)
            q = lo + min(max(t, 0.1), 0.9) * (hi - lo)
        else:
            known = best if best is not None else over
            q = known.header.quality + math.log(goal / known.size) / slope
        step = 1 / QUALITY_STEP
        low_end, high_end = (lo + step if best is not None else lo), (hi - step if over is not None else hi)
        return quantize_quality(min(max(q, low_end), high_end))

    def guided(self, count: int):
        """Whole encodes at the quality the sample points to, then at qualities interpolated from
        the real sizes, then bisection on real sizes (module doc)."""
        from cosmic.utils.progress import progress_bar

        lo_q, hi_q = self.pipe.quality_range
        goal, best, over = (1 - self.tolerance / 2) * self.budget, None, None
        with progress_bar(desc=f"rate control: sampling {count} tiles", unit="step", disable=not self.progress,
                          leave=False) as bar:
            self.start_sample(count, bar)
            q, slope = self.sample_guess(goal)
        for _ in range(MAX_WHOLE_ENCODES):
            coded = self.whole(q)
            if self.fits(coded.size):
                return coded
            if coded.size <= self.budget:
                if coded.header.quality >= hi_q:
                    raise self.refuse(high=coded)
                best = coded
            elif coded.header.quality <= lo_q:
                raise self.refuse(low=coded)
            else:
                over = coded
            lo = best.header.quality if best is not None else lo_q
            hi = over.header.quality if over is not None else hi_q
            if hi - lo <= 1.5 / QUALITY_STEP:
                break
            q = self.next_quality(best, over, goal, slope)
        return self.finish(best, over)

    def finish(self, best, over):
        """Bisection on real sizes from the bracket the guided encodes left (the lowest quality
        coded first when none of them fitted: it fits, or the budget is out of reach)."""
        lo_q, hi_q = self.pipe.quality_range
        if best is None:
            best = self.whole(lo_q)
            if best.size > self.budget:
                raise self.refuse(low=best)
        return self.narrow(best, best.header.quality, over.header.quality if over is not None else hi_q)


def search_quality(pipe, scene, budget: int, tile: int, tolerance: float, target: str, progress: bool = False):
    """The highest quality of ``pipe``'s range whose file of ``scene`` fits in ``budget`` bytes
    (module doc): an :class:`~cosmic.pipelines.encode.EncodedScene` whose ``seconds`` is the whole
    search's; InputError, naming the reachable range, when the budget is out of reach."""
    import sys

    count = sample_count(-(-scene.width // tile) * -(-scene.height // tile))
    bars = progress and (count is not None or sys.stderr.isatty())  # a small scene: a terminal's bar only
    search = _Search(pipe, scene, tile, budget, tolerance, target, bars)
    t0 = time.perf_counter()
    best = search.exact() if count is None else search.guided(count)
    best.seconds, best.trials = time.perf_counter() - t0, search.trials
    return best
