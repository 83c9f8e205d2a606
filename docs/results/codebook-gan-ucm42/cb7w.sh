#!/bin/bash
# stage 3 of the codebook prior at lower GAN weights (0.02, 0.01), the rest as runs/cb7.sh; then 42 UCM val images with fidelity 0 and 0.5
set -e
cd /work/main
source .venv/bin/activate
export OMP_NUM_THREADS=1
D=../shared/data/ucmerced
for w in 02 01; do
  cosmic train codebook --stage 3 --data $D --out runs/cb7w$w --steps 500 --init-from codebook-ucm \
    --hpin-disc-weight 0.$w --disc-start 0.0 --threads 1
done
M=cosmic-small-vr
cosmic eval --data $D --split val --gsd 0.3048 --limit 42 --threads 1 \
  --codecs "model:$M@1+$M@2+codebook=runs/cb7/prior@0.5,model:$M@1+$M@2+codebook=runs/cb7w02/prior,model:$M@1+$M@2+codebook=runs/cb7w01/prior,model:$M@1+$M@2+codebook@0.5" --out runs/cb7w-ucm42
