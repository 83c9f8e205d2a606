#!/bin/bash
# Code-RSIC prior: stage 2 retrained on the shipped default's decodes (as runs/cb7.sh), then stage 3 with
# the PatchGAN term at 0.05 (runs/cb8) and 0.03 (runs/cb8g03, same stage 2), 600 steps each;
# then 42 UCM val images at fidelity 0.3 / 0.4 / 0.5
set -e
cd /work/main
source .venv/bin/activate
export OMP_NUM_THREADS=1
D=../shared/data/ucmerced
cosmic train codebook --stage 2 --data $D --out runs/cb8 --steps 400 --init-from codebook-ucm --threads 1
mkdir -p runs/cb8g03/prior
cp -r runs/cb8/prior/* runs/cb8g03/prior/; cp runs/cb8/lq_pairs.npz runs/cb8g03/
cosmic train codebook --stage 3 --data $D --out runs/cb8 --steps 600 --init-from codebook-ucm \
    --hpin-disc-weight 0.05 --disc-start 0.0 --threads 1
cosmic train codebook --stage 3 --data $D --out runs/cb8g03 --steps 600 --init-from codebook-ucm \
    --hpin-disc-weight 0.03 --disc-start 0.0 --threads 1
M=cosmic-small-vr
C=""
for p in cb8 cb8g03; do for w in 0.3 0.4 0.5; do C="$C,model:$M@1+$M@2+codebook=runs/$p/prior@$w"; done; done
cosmic eval --data $D --split val --gsd 0.3048 --limit 42 --threads 1 \
  --codecs "model:$M@1+$M@2$C" --out runs/cb8-ucm42
