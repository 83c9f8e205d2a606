"""Regenerate the test fixtures (run by hand; the outputs are committed):

    python tests/make_fixtures.py

* ``fixtures/tiny-model``: a tiny, untrained, seeded COSMIC (N=16, M=16) with built entropy tables,
  for golden bitstreams that do not depend on the shipped weights.
* ``fixtures/golden.txt``: SHA-256 of the .cosmic file that model writes for ``golden_image()``
  (format version 4 since issue 33 item 10: its right-hand tile is coded 256x64, not 256x256).
* ``fixtures/golden-v1.cosmic`` and ``golden-v1.txt`` (not regenerated here: they pin the old
  format): the version 1 file the same model wrote for ``golden_image()`` before version 4
  existed (edge tiles padded to the tile), its SHA-256 and those of its decodes; every later
  decoder must decode it to the same pixels.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import torch

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from helpers import TINY_MODEL, encode_file, golden_image  # noqa: E402

from cosmic.models.cosmic import Cosmic  # noqa: E402


def main() -> None:
    torch.manual_seed(1234)
    model = Cosmic(N=16, M=16, ground_channels=8, latent_channels=4, name="cosmic-tiny-test")
    model.update(force=True)
    model.save_pretrained(TINY_MODEL)
    model = Cosmic.from_pretrained(TINY_MODEL)
    digest = hashlib.sha256(encode_file(model.onboard, golden_image(), model.name)).hexdigest()
    (HERE / "fixtures" / "golden.txt").write_text(digest + "\n")
    print(digest)


if __name__ == "__main__":
    main()
