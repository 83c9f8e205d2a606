"""Stage-1 objective (paper Eq. 1 with D = MSE; docs/DESIGN.md §3)::

    L = R + λ·255²·((1 - w)·MSE(x, x̂) + w·MSE(x, x̂_est)) + β·KL(q(z0|x) ‖ N(0, I))

* R: bits per pixel of y and z from the likelihoods (the *training* estimate; reported bpp always
  comes from real bitstreams).
* x̂ uses z0 ~ q(z0|x) from Ẽ, x̂_est the deterministic ẑ0(y_hat): the second term keeps the
  "no compensation" decoder (steps 0) a good codec on its own. Its weight w (0.5: the paper's
  plain sum) is what makes y_hat, not z0, carry what the diffusion model cannot guess - colour
  above all: z0 is generated on the ground from y_hat and metadata, so anything only z0 knows
  comes back as a guess. ``chroma_weight`` adds the error of the block-averaged colour
  differences of that path (:func:`low_chroma`) to the distortion: our first models left colour
  to z0 (a linear probe of y_hat recovered R² 0.25 / 0.08 of the image colour), and this term
  prices it where it must be carried.
* The KL term, in bits per pixel, prices the information Ẽ puts into z0, so that z0 cannot smuggle
  the whole image past the rate term and stays something a diffusion model can generate
  (docs/DESIGN.md §3 allows and asks to measure it; it is logged as ``kl_bpp``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Stage1Loss(nn.Module):
    def __init__(self, lmbda: float, kl_weight: float = 0.5, est_weight: float = 0.5,
                 chroma_weight: float = 0.0):
        super().__init__()
        self.chroma_weight = chroma_weight
        if not 0.0 <= est_weight <= 1.0:
            raise ValueError(f"est_weight {est_weight}: must be in [0, 1]")
        self.lmbda = lmbda
        self.kl_weight = kl_weight
        self.est_weight = est_weight

    def forward(self, out: dict, x: torch.Tensor, lmbda: torch.Tensor | None = None) -> dict:
        """Loss terms of a batch. ``lmbda``: a (B,) tensor of per-sample λ for a variable-rate
        model (each sample's rate and distortion are traded at its own λ); None: ``self.lmbda``."""
        n, _, h, w = x.shape
        lam = torch.full((n,), self.lmbda, device=x.device) if lmbda is None else lmbda.to(x.device)
        bits = sum(torch.log(lk.float()).flatten(1).sum(1) for lk in out["likelihoods"].values())
        bpp = (bits / (-math.log(2) * h * w)).mean()
        split = out.get("split")
        part_a, part_b = (slice(None), slice(None)) if split is None else (slice(0, split), slice(split, None))
        se = _per_sample_mse(out["x_hat"], x[part_a])
        se_est = _per_sample_mse(out["x_hat_est"], x[part_b])
        if "z0_mu" in out:
            mu, logvar = out["z0_mu"].float(), out["z0_logvar"].float()
            kl_bpp = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum() / (math.log(2) * n * h * w)
        else:  # a model without a compensation latent (the learned baselines)
            kl_bpp = torch.zeros((), device=x.device)
        wt = self.est_weight
        weighted = (1 - wt) * (lam[part_a] * se).mean() + wt * (lam[part_b] * se_est).mean()
        terms = {"bpp": bpp, "mse": se.mean(), "mse_est": se_est.mean(), "kl_bpp": kl_bpp}
        if self.chroma_weight:
            chroma = _per_sample_mse(low_chroma(out["x_hat_est"].float()), low_chroma(x[part_b]))
            terms["chroma_est"] = chroma.mean()
            weighted = weighted + self.chroma_weight * (lam[part_b] * chroma).mean()
        terms["loss"] = bpp + 255**2 * weighted + self.kl_weight * kl_bpp
        return terms


def _per_sample_mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.float() - b.float()).pow(2).flatten(1).mean(1)


def low_chroma(x: torch.Tensor, block: int = 8) -> torch.Tensor:
    """Colour differences (R-G, B-G) averaged over ``block``-px squares: the part of an image's
    colour a decoder can only get right if y_hat carries it (used by ``chroma_weight``)."""
    diff = torch.stack([x[:, 0] - x[:, 1], x[:, 2] - x[:, 1]], dim=1)
    return F.avg_pool2d(diff, block)


def psnr(mse: float | torch.Tensor) -> float:
    mse = float(mse)
    return float("inf") if mse <= 0 else 10 * math.log10(1.0 / mse)
