#!/bin/bash
# Code-RSIC prior retrained on the cycle-7 default's decodes: stage 2 and stage 3 warm from the shipped prior,
# stage 3 with a PatchGAN term (the paper's adversarial HPIN training); the codebook (stage 1) is kept
set -e
cd /work/main
source .venv/bin/activate
export OMP_NUM_THREADS=1
while pgrep -f eval_s2_7.sh > /dev/null; do sleep 20; done
D=../shared/data/ucmerced
cosmic train codebook --stage 2 --data $D --out runs/cb7 --steps 400 --init-from codebook-ucm --threads 1
cosmic train codebook --stage 3 --data $D --out runs/cb7 --steps 500 --init-from codebook-ucm \
    --hpin-disc-weight 0.05 --disc-start 0.0 --threads 1
M=cosmic-small-vr
cosmic eval --data $D --split val --gsd 0.3048 --limit 42 --threads 1 \
  --codecs "model:$M@1+$M@2,model:$M@1+$M@2+codebook,model:$M@1+$M@2+codebook=runs/cb7/prior" --out runs/cb7-ucm42
