#!/bin/bash
# evaluate a stage-1 snapshot on the 420 UCM val images (ucm) or the 95 scene tiles (tiles), steps 0;
# the jpeg2000 rows merged from the seventh cycle's evaluation (same images, same command)
set -e
cd /work/main
source .venv/bin/activate
export OMP_NUM_THREADS=1
SNAP=$1; TAG=$2; SET=$3
if [ "$SET" = ucm ]; then
  OUT=docs/results/$TAG-ucm-val; REF=docs/results/vr-e256-7-step6000-ucm-val
  ARGS="--data ../shared/data/ucmerced --split val --gsd 0.3048"
else
  OUT=docs/results/$TAG-scenes; REF=docs/results/vr-e256-7-step6000-scenes
  ARGS="--data results/tiles --no-stitch"
fi
cosmic eval $ARGS --classifier none --threads 1 --codecs model:$SNAP --out $OUT > /dev/null
python - "$OUT" "$REF" <<'PY'
import json, sys
out, ref = sys.argv[1], sys.argv[2]
rows = [r for r in json.load(open(f"{out}/per_image.json")) if r["codec"] != "jpeg2000"]
rows += [r for r in json.load(open(f"{ref}/per_image.json")) if r["codec"] == "jpeg2000"]
json.dump(rows, open(f"{out}/per_image.json", "w"), indent=1)
PY
cosmic eval $ARGS --classifier none --codecs model:$SNAP,jpeg2000 --out $OUT --report-only > /dev/null
grep -A4 "BD-rate" $OUT/summary.md | head -8
