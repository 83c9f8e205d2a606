#!/bin/bash
# issue 19's figures: the shipped prior (GAN stage 3, default fidelity 0.5) beside the plain and the
# compensated (10 DDIM steps) decodes of the shipped default at q1, q2; 420 UCM val, then the 95 tiles
set -e
cd /work/main
source .venv/bin/activate
export OMP_NUM_THREADS=1
M=cosmic-small-vr
C="model:$M@1+$M@2,model:$M@1+$M@2+codebook,model-dc:$M@1+$M@2"
cosmic eval --data ../shared/data/ucmerced --split val --gsd 0.3048 --threads 1 --steps 10 \
  --codecs "$C" --out docs/results/codebook-gan-ucm420 > /dev/null
cosmic eval --data results/tiles --threads 1 --steps 10 --no-stitch \
  --codecs "$C" --out docs/results/codebook-gan-scenes95 > /dev/null
