"""Vector quantiser with an EMA codebook and dead-code restarts (Code-RSIC stage 1, the VQGAN
codebook C of the paper's Fig. 3; the quantiser is VQ-VAE-2's / Razavi et al. 2019's EMA form).

For an encoder output z (B, d, h, w), every position takes its nearest code::

    k* = argmin_k ‖z - c_k‖²,   z_q = c_{k*},   output z + sg(z_q - z)   (straight-through)

and the loss term is the commitment β‖z - sg(z_q)‖² only. The codebook is not learned by the
gradient (the paper's VQGAN uses the codebook loss ‖sg(z) - z_q‖²): during training each code
is an exponential moving average of the encoder outputs assigned to it (cluster sizes N_k and sums
m_k, decay γ, Laplace smoothing), and a code whose EMA count falls below ``restart_threshold`` is
restarted at a random encoder output of the batch (Dhariwal et al. 2020, Jukebox; counts start
at 1, so with γ = 0.99 an unused code is restarted after ~120 steps at the default threshold 0.3;
a batch of B·h·w vectors over K codes gives each an average count of B·h·w / K per step). That is why this is not diffusers'
``VectorQuantizer`` (``diffusers.models.autoencoders.vae``): it learns the codebook by gradient
and has neither EMA updates nor restarts, and with few CPU steps a gradient-learned codebook
leaves most codes unused (codebook collapse).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["EMAVectorQuantizer"]


class EMAVectorQuantizer(nn.Module):
    """``num_codes`` codes of dimension ``dim``; the codebook and its EMA statistics are buffers
    (saved with the model, not trained by the optimiser)."""

    def __init__(self, num_codes: int, dim: int, decay: float = 0.99, beta: float = 0.25,
                 eps: float = 1e-5, restart_threshold: float = 0.3):
        super().__init__()
        self.num_codes, self.dim = num_codes, dim
        self.decay, self.beta, self.eps, self.restart_threshold = decay, beta, eps, restart_threshold
        embed = torch.randn(num_codes, dim) * 0.1
        self.register_buffer("embed", embed)
        self.register_buffer("cluster_size", torch.ones(num_codes))
        self.register_buffer("embed_sum", embed.clone())

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code of each row of ``flat`` (N, dim), squared Euclidean distance."""
        dist = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.embed.t()
                + self.embed.pow(2).sum(1)[None])
        return dist.argmin(1)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes of ``indices`` (B, h, w) as a (B, dim, h, w) map."""
        return F.embedding(indices, self.embed).permute(0, 3, 1, 2).contiguous()

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        """(straight-through z_q, commitment loss, indices (B, h, w), stats) of z (B, dim, h, w)."""
        b, d, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, d)
        idx = self.nearest(flat.detach().float())
        if self.training:
            self._ema_update(flat.detach().float(), idx)
        z_q = self.lookup(idx.view(b, h, w)).to(z.dtype)
        loss = self.beta * F.mse_loss(z, z_q.detach())
        out = z + (z_q - z).detach()
        return out, loss, idx.view(b, h, w), usage_stats(idx, self.num_codes)

    @torch.no_grad()
    def _ema_update(self, flat: torch.Tensor, idx: torch.Tensor) -> None:
        onehot = F.one_hot(idx, self.num_codes).type(flat.dtype)
        self.cluster_size.lerp_(onehot.sum(0), 1 - self.decay)
        self.embed_sum.lerp_(onehot.t() @ flat, 1 - self.decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (n + self.num_codes * self.eps) * n
        self.embed.copy_(self.embed_sum / smoothed[:, None])
        self.restart_dead(flat)

    @torch.no_grad()
    def restart_dead(self, flat: torch.Tensor) -> int:
        """Move every code whose EMA count is below ``restart_threshold`` to a random row of
        ``flat`` (its count reset to 1); returns how many were restarted."""
        dead = (self.cluster_size < self.restart_threshold).nonzero().flatten()
        if dead.numel() == 0:
            return 0
        picks = flat[torch.randint(0, flat.shape[0], (dead.numel(),), device=flat.device)]
        self.embed[dead] = picks
        self.embed_sum[dead] = picks
        self.cluster_size[dead] = 1.0
        return int(dead.numel())


def usage_stats(idx: torch.Tensor, num_codes: int) -> dict:
    """Perplexity exp(H(p)) of the code histogram and the fraction of codes used."""
    counts = torch.bincount(idx.flatten(), minlength=num_codes).float()
    p = counts / counts.sum()
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    return {"perplexity": float(entropy.exp()), "usage": float((counts > 0).float().mean())}
