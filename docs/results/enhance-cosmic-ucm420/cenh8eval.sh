#!/bin/bash
# issue 16: the shipped COSMIC enhancer (runs/cenh8) on all 420 UCM val images and the 95 tiles, steps 0,
# with the scene classifier (top-1, FD-UCM)
set -e
cd /work/main
source .venv/bin/activate
export OMP_NUM_THREADS=1
cosmic eval --data ../shared/data/ucmerced --split val --gsd 0.3048 --threads 1 \
  --codecs cosmic,cosmic+enhance --out docs/results/enhance-cosmic-ucm420 > /dev/null
cosmic eval --data results/tiles --threads 1 --no-stitch \
  --codecs cosmic,cosmic+enhance --out docs/results/enhance-cosmic-scenes95 > /dev/null
