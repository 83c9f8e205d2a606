"""LPIPS and FID, when their ImageNet backbones are already on this machine.

Both need pretrained networks (LPIPS: AlexNet; FID: the TF-ported InceptionV3) that their
packages download on first use. Nothing here downloads: each metric is *available* only when its
package is installed and its weights are in the torch hub cache (``$TORCH_HOME/hub/checkpoints``),
otherwise :func:`status` says why it is unavailable and reports carry that word instead of a
number.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["status", "LPIPS_WEIGHTS", "FID_WEIGHTS", "lpips_metric"]

LPIPS_WEIGHTS = "alexnet-owt-7be5be79.pth"  # torchvision's AlexNet, LPIPS' default backbone
FID_WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's InceptionV3 (FID)


def _checkpoints() -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def status() -> dict[str, str]:
    """``{"lpips": "available" | "unavailable: why", "fid": ...}`` without any network access."""
    out = {}
    ckpt = _checkpoints()
    for metric, package, weights in (("lpips", "lpips", LPIPS_WEIGHTS), ("fid", "torch_fidelity", FID_WEIGHTS)):
        if importlib.util.find_spec(package) is None:
            out[metric] = f"unavailable: the '{package}' package is not installed"
        elif not (ckpt / weights).is_file():
            out[metric] = f"unavailable: {weights} is not in {ckpt} (no download is attempted)"
        else:
            out[metric] = "available"
    return out


def lpips_metric():
    """A callable ``(a, b) -> float`` on (H, W, 3) uint8 arrays, or None when unavailable."""
    if status()["lpips"] != "available":
        return None
    import lpips
    import numpy as np
    import torch

    net = lpips.LPIPS(net="alex", verbose=False).eval()

    def metric(a: np.ndarray, b: np.ndarray) -> float:
        ta = torch.from_numpy(a).permute(2, 0, 1)[None].float() / 127.5 - 1
        tb = torch.from_numpy(b).permute(2, 0, 1)[None].float() / 127.5 - 1
        with torch.no_grad():
            return float(net(ta, tb))

    return metric
