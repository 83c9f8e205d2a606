"""Metadata encoder ME (paper Eq. 3): c_final = MLP(concat(E_sin(m_1), ..., E_sin(m_M))).

Each scalar goes through a sinusoidal embedding (as diffusion timesteps do, diffusers'
``get_timestep_embedding``) after an affine map to a common range. A field that is absent gets a
learned "unknown" embedding instead - never a made-up value. The output is a short sequence of
tokens for the UNet's cross-attention: one per field (its embedding plus a learned field identity,
through a shared MLP) and one global token, the MLP of the concatenation (Eq. 3 itself).

Fields (timestamp split into what a scene's look depends on): UTM zone (signed by hemisphere;
0 hemisphere unknown is still a zone), year, day of year, hour of day (UTC), GSD (log), cloud cover,
off-nadir angle, target azimuth, sun azimuth, sun elevation.
"""

from __future__ import annotations

import math

import torch
from diffusers.models.embeddings import get_timestep_embedding
from torch import nn

from cosmic.metadata import SensorMetadata
from cosmic.utils.pretrained import ConfigMixin, register_component, register_to_config

__all__ = ["FIELDS", "metadata_to_tensor", "MetadataEncoder"]

# name, function of SensorMetadata -> value or None, affine map to ~[0, 1000] for E_sin
FIELDS: tuple[str, ...] = (
    "utm_zone", "year", "day_of_year", "hour_utc", "log_gsd", "cloud_cover",
    "off_nadir_angle", "target_azimuth", "sun_azimuth", "sun_elevation",
)
_SCALE = {  # value -> value * a + b, so that each field spans roughly 0..1000
    "utm_zone": (8.0, 500.0),  # -60..60 (south negative)
    "year": (20.0, -39200.0),  # 1960..2010..2030 -> 0..1000..1400
    "day_of_year": (2.7, 0.0),
    "hour_utc": (41.0, 0.0),
    "log_gsd": (100.0, 300.0),  # log10(0.1 m) .. log10(1000 m) -> 200..600
    "cloud_cover": (10.0, 0.0),
    "off_nadir_angle": (11.0, 0.0),
    "target_azimuth": (2.7, 0.0),
    "sun_azimuth": (2.7, 0.0),
    "sun_elevation": (5.5, 500.0),
}


def _values(m: SensorMetadata) -> list[float | None]:
    ts = m.timestamp
    zone = None
    if m.utm_zone is not None:
        zone = float(m.utm_zone) * (-1.0 if m.utm_north is False else 1.0)
    return [
        zone,
        None if ts is None else float(ts.year),
        None if ts is None else float(ts.timetuple().tm_yday),
        None if ts is None else ts.hour + ts.minute / 60.0,
        None if m.gsd is None or m.gsd <= 0 else math.log10(m.gsd),
        m.cloud_cover, m.off_nadir_angle, m.target_azimuth, m.sun_azimuth, m.sun_elevation,
    ]


def metadata_to_tensor(batch: list[SensorMetadata]) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, present): float tensors of shape (B, len(FIELDS)); absent values are 0 and
    ``present`` is 0 there."""
    vals = torch.zeros(len(batch), len(FIELDS))
    present = torch.zeros(len(batch), len(FIELDS))
    for i, m in enumerate(batch):
        for j, (name, v) in enumerate(zip(FIELDS, _values(m))):
            if v is not None:
                a, b = _SCALE[name]
                vals[i, j] = v * a + b
                present[i, j] = 1.0
    return vals, present


@register_component
class MetadataEncoder(nn.Module, ConfigMixin):
    """Sensor metadata -> (B, len(FIELDS) + 1, dim) cross-attention tokens (Eq. 3)."""

    @register_to_config
    def __init__(self, dim: int = 128, sin_dim: int = 64, field_dropout: float = 0.25):
        super().__init__()
        self.sin_dim = sin_dim
        self.field_dropout = field_dropout
        n = len(FIELDS)
        self.unknown = nn.Parameter(torch.randn(n, sin_dim) * 0.02)
        self.field_id = nn.Parameter(torch.randn(n, sin_dim) * 0.02)
        self.token_mlp = nn.Sequential(nn.Linear(sin_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.global_mlp = nn.Sequential(nn.Linear(n * sin_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, values: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        b, n = values.shape
        if self.training and self.field_dropout > 0:  # every subset of fields must work
            keep = (torch.rand_like(present) >= self.field_dropout).to(present.dtype)
            present = present * keep
        emb = get_timestep_embedding(values.reshape(-1), self.sin_dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        emb = emb.reshape(b, n, self.sin_dim).to(self.unknown.dtype)
        p = present.unsqueeze(-1).to(emb.dtype)
        emb = p * emb + (1 - p) * self.unknown.unsqueeze(0)
        tokens = self.token_mlp(emb + self.field_id.unsqueeze(0))
        global_token = self.global_mlp(emb.reshape(b, n * self.sin_dim)).unsqueeze(1)
        return torch.cat([global_token, tokens], dim=1)
