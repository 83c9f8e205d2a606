"""Diffusion compensation on the ground (paper §4.4, Eq. 3-5, Algorithm 2)."""
