#!/usr/bin/env bash
# One prepared command for a machine with a CUDA GPU and PyTorch, with or without network (issue 31):
# continue the stage-1 campaign from its newest committed snapshot for COSMIC_MINUTES, validate, and
# export float16 EMA weights and a report.
#
#   scripts/train_on_device.sh OUTDIR
#
# Needs, beside the code: the trainer's wheels for what the machine lacks and the data pack, both
# made here with `make device-kit` (in .device-kit/: wheels/ and ucm-pack.zip). Nothing is ever
# downloaded: a missing wheelhouse is a one-line error (exit 2). The wheels are installed into a
# temporary target (never torch or torchvision: the machine's own are kept) and the code runs from
# PYTHONPATH=src.
#
# OUTDIR/last: the full checkpoint (a second call with the same OUTDIR resumes it exactly);
# OUTDIR/export (or COSMIC_EXPORT): weights/ (float16 EMA, component layout) and report.json.
#
# Environment (all optional): PYTHON (python3), COSMIC_KIT (.device-kit), COSMIC_DEVICE (cuda),
# COSMIC_MINUTES (8), COSMIC_STEPS (the cosine cycle's length, 6000), COSMIC_BATCH (auto: measured),
# COSMIC_INIT (training/campaign/latest), COSMIC_DATA (the kit's pack), COSMIC_EXPORT, COSMIC_CROP
# (the recipe's, 256; smaller only for data of smaller images).
# On the lent GPU (see docs/guide/air-gapped.md, "Training on an air-gapped GPU machine"):
#   bash scripts/train_on_device.sh /tmp/run && cp -r /tmp/run/export/. "$OUT"/
set -euo pipefail
OUTDIR=${1:?usage: scripts/train_on_device.sh OUTDIR}
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
KIT=${COSMIC_KIT:-.device-kit}
if ! ls "$KIT"/wheels/*.whl >/dev/null 2>&1; then
  echo "train_on_device.sh: error: no wheelhouse in $KIT/wheels (run \`make device-kit\` on a machine with network first; this script never downloads)" >&2
  exit 2
fi
export COSMIC_DATA=${COSMIC_DATA:-$KIT/ucm-pack.zip}
if [ ! -e "$COSMIC_DATA" ]; then
  echo "train_on_device.sh: error: no data pack at $COSMIC_DATA (run \`make device-kit\` first)" >&2
  exit 2
fi
SITE=$(mktemp -d "${TMPDIR:-/tmp}/cosmic-site.XXXXXX")
trap 'rm -rf "$SITE"' EXIT
"$PYTHON" scripts/wheelhouse.py install "$KIT/wheels" "$SITE" --check
export PYTHONPATH="$PWD/src:$SITE${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
EXPORT=${COSMIC_EXPORT:-$OUTDIR/export}
export COSMIC_EXPORT=$EXPORT
mkdir -p "$OUTDIR" "$EXPORT"
status=0
"$PYTHON" -m cosmic.training.device_run "$OUTDIR" 2>&1 | tee -a "$OUTDIR/train.log" || status=$?
cp "$OUTDIR/train.log" "$EXPORT/train.log"
exit $status
