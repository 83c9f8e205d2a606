#!/usr/bin/env bash
# One prepared command for a machine with a CUDA GPU: train the variable-rate COSMIC stage 1 at
# the paper's widths for at most COSMIC_MINUTES (default 9) with bf16 autocast, and leave
# resumable weights in OUTDIR (OUTDIR/last: full checkpoint with optimizer, EMA and RNG state;
# OUTDIR/final: the EMA weights, loadable with `cosmic ... -m OUTDIR/final`).
#
#   scripts/train_on_device.sh OUTDIR [more `cosmic train stage1` options]
#
# Environment (all optional): COSMIC_DEVICE (cuda), COSMIC_PRESET (paper; `small` for a larger
# small-preset run), COSMIC_MINUTES (9), COSMIC_STEPS (the schedule's length, 60000),
# COSMIC_BATCH (16), COSMIC_DATA (../shared/data/ucmerced), PYTHON (.venv/bin/python, made
# with `make install` when missing). Run it again with the same OUTDIR to continue.
# Tested on the CPU: COSMIC_DEVICE=cpu COSMIC_PRESET=small COSMIC_STEPS=2 ... (tests/scripts/test_train_on_device.py).
set -euo pipefail
OUT=${1:?usage: scripts/train_on_device.sh OUTDIR [cosmic train stage1 options]}
shift
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || make install
DATA=${COSMIC_DATA:-../shared/data/ucmerced}
SCENES=../shared/data/scenes
EXTRA=()
for s in landsat8_LC81070352015122LGN00_rgb landsat8_LC81210442015044LGN00_rgb landsat7_RGB.byte; do
  [ -f "$SCENES/$s.png" ] && EXTRA+=(--extra-data "$SCENES/$s.png")
done
SPLIT=train
grep -q '"train_extra"' "$DATA/SPLITS.json" 2>/dev/null && SPLIT=train+train_extra
exec "$PYTHON" -m cosmic.cli train stage1 --data "$DATA" --split "$SPLIT" --out "$OUT" \
  --preset "${COSMIC_PRESET:-paper}" --device "${COSMIC_DEVICE:-cuda}" --bf16 \
  --max-minutes "${COSMIC_MINUTES:-9}" --steps "${COSMIC_STEPS:-60000}" --batch-size "${COSMIC_BATCH:-16}" \
  --rate-lambdas 0.0003,0.00067,0.0015,0.0033,0.0073,0.0162 --colour-space ycbcr --colour-shortcut \
  --est-weight 0.7 --chroma-weight 4 --kl-weight 2 --lr 2e-4 --lr-schedule cosine --lr-drop-at 0.6 \
  --final-lr 0.05 --warmup-steps 300 --ema-decay 0.999 --val-every 1000000 --checkpoint-every 500 \
  --name "cosmic-${COSMIC_PRESET:-paper}-vr" "${EXTRA[@]}" "$@"
