"""The scene classifier's measurements (:mod:`cosmic.evaluation.classifier`; not ``test_classifier.py``, which
is the trainer's in tests/training: pytest needs distinct test file names): the Fréchet distance."""

from __future__ import annotations

import numpy as np
import pytest


def test_frechet_distance_known_values():
    from cosmic.evaluation.classifier import frechet_distance

    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 4))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shifted = a + np.array([1.0, 0.0, 2.0, 0.0])
    assert frechet_distance(a, shifted) == pytest.approx(5.0, rel=1e-6)  # |mean shift|^2, same covariance
    scaled = a * 2.0  # covariance 4I vs I: trace(I + 4I - 2*2I) = 1 per dimension
    assert frechet_distance(a, scaled) == pytest.approx(4.0, rel=0.05)
