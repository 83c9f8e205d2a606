"""Evaluation: metrics and classical-codec baselines (ground-side tooling)."""
