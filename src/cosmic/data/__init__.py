"""Bundled sample imagery (public domain; see README.md)."""

from importlib import resources
from pathlib import Path

SAMPLE_IMAGE = "naip_sample.png"


def sample_path(name: str = SAMPLE_IMAGE) -> Path:
    return Path(str(resources.files("cosmic.data") / name))
