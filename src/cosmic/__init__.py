"""COSMIC: satellite image compression with a lightweight on-board encoder and ground-side
diffusion compensation (Zhang et al., NeurIPS 2024)."""

__version__ = "0.1.0"
