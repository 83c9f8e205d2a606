"""Named sizes of the Code-RSIC networks (``cosmic train codebook --preset``).

``small``: trains on two CPU cores in minutes (codes at H/8, 512 codes of dimension 64, a
2-layer predictor). ``paper``: CodeFormer's sizes, which Code-RSIC builds on (codes at H/16,
1024 codes of dimension 256, a 9-layer, 512-wide, 8-head Transformer); it needs a GPU.
"""

from __future__ import annotations

from cosmic.errors import InputError

__all__ = ["PRESETS", "preset"]

PRESETS = {
    "small": {"vqgan": {"channels": [32, 64, 128], "dim": 64, "num_codes": 512, "blocks": 1},
              "predictor": {"width": 128, "layers": 2, "heads": 4},
              "hpin": {"heads": 4, "window": 8}},
    "paper": {"vqgan": {"channels": [64, 128, 256, 256], "dim": 256, "num_codes": 1024, "blocks": 2},
              "predictor": {"width": 512, "layers": 9, "heads": 8},
              "hpin": {"heads": 8, "window": 8}},
}


def preset(name: str) -> dict:
    """The configs of the three components of preset ``name`` (the VQGAN's shape shared)."""
    if name not in PRESETS:
        raise InputError(f"--preset {name}: unknown; choose one of {', '.join(PRESETS)}")
    p = PRESETS[name]
    shape = {k: p["vqgan"][k] for k in ("channels", "blocks")}
    return {"vqgan": dict(p["vqgan"]),
            "predictor": {**shape, "dim": p["vqgan"]["dim"], "num_codes": p["vqgan"]["num_codes"],
                          **p["predictor"]},
            "hpin": {"channels": shape["channels"], **p["hpin"]}}
