"""Perceptual metrics (:mod:`cosmic.evaluation.perceptual`): unavailable without cached weights, with no network."""

from __future__ import annotations


def test_perceptual_metrics_unavailable_without_weights(tmp_path, monkeypatch):
    """No cached backbone: 'unavailable', at once, with no network attempt."""
    import socket
    import time

    from cosmic.evaluation import perceptual

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_network(*a, **k):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "create_connection", no_network)
    t0 = time.perf_counter()
    st = perceptual.status()
    assert st["lpips"].startswith("unavailable") and st["fid"].startswith("unavailable")
    assert perceptual.lpips_metric() is None
    assert time.perf_counter() - t0 < 5
