#!/usr/bin/env bash
# Issue 15 on one GPU machine (repo root, venv at .venv, 16 cores, 1 H200) in at most BUDGET_S seconds (default
# 470 s, under 8 minutes):
#   1. pretrain both recipes on cuda and ship the weights into the package (src/labelwise/weights/), while the
#      benchmark data (MultiDigits-20/-80 at 128 px) are generated on the CPU cores;
#   2. run dlfl, two_stage and mlvpt (pretrained regime) concurrently on the GPU, each with a --time-budget
#      (runs go seed by seed, so a cut benchmark keeps complete seed pairs; its JSON says "complete": false);
#   3. regenerate the tables of docs/results.md from docs/results/*.json.
# Every step has a time limit; a step that does not fit is skipped and reported. Log: runs/gpu_issue15/log.txt.
# When $OUT is set (the device tool's output folder), the shipped weights + cards, docs/results/*.json,
# docs/results.md and the logs are copied there after every phase, so what was measured comes back even if
# the call is cut.
#
# EXTRA_ARGS is appended to every benchmark command (e.g. EXTRA_ARGS="--n-train 2000 --max-epochs 15
# --patience 3" to fit more seeds into the budget; the JSON records the command), PRETRAIN_ARGS to both
# pretraining commands (dotted recipe overrides, e.g. "run.trainer.max_epochs=6").
# STEPS (default "pretrain bench tables") and BENCHES (default "dlfl two_stage mlvpt") select what runs, so
# the work can be split over two calls (e.g. STEPS="pretrain bench" BENCHES=dlfl, then STEPS="bench tables"
# BENCHES="two_stage mlvpt" with the weights of the first call in the tree).
#
#   bash benchmarks/gpu_run_issue15.sh              # the GPU run
#   TINY=1 bash benchmarks/gpu_run_issue15.sh       # CPU smoke test of the same script (quick sizes, nothing
#                                                   # shipped, results under runs/quick/)
set -u
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python
BUDGET_S=${BUDGET_S:-470}
T0=$(date +%s)
DEADLINE=$((T0 + BUDGET_S))
DEST=${OUT:-}
OUT=runs/gpu_issue15
mkdir -p "$OUT"
STEPS=${STEPS:-pretrain bench tables}
BENCHES=${BENCHES:-dlfl two_stage mlvpt}
has() { case " $1 " in *" $2 "*) return 0;; esac; return 1; }
sync_out() {
  [ -n "$DEST" ] || return 0
  mkdir -p "$DEST/weights" "$DEST/results" "$DEST/logs"
  cp src/labelwise/weights/md-* "$DEST/weights/" 2>/dev/null
  cp docs/results/*.json "$DEST/results/" 2>/dev/null
  cp docs/results.md "$DEST/" 2>/dev/null
  cp runs/gpu_issue15/*.out runs/gpu_issue15/log.txt "$DEST/logs/" 2>/dev/null
  mkdir -p "$DEST/quick" && cp runs/quick/*.json runs/quick/weights/*.json "$DEST/quick/" 2>/dev/null
  return 0
}
export LABELWISE_CACHE=${LABELWISE_CACHE:-$PWD/runs/gpu_issue15/cache}
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
if [ "${TINY:-0}" = 1 ]; then
  DEV=cpu; QUICK=--quick; SHIP=(-o runs/quick/weights); WORKERS=0; BW=0
else
  DEV=cuda; QUICK=; SHIP=(--ship); WORKERS=4; BW=4
fi
log() { echo "[$(($(date +%s) - T0))s] $*" | tee -a "$OUT/log.txt"; }
left() { echo $((DEADLINE - $(date +%s))); }
# run NAME LIMIT CMD...: run with min(LIMIT, time left - 5) seconds, or skip when under 20 s are left
run() {
  local name=$1 limit=$2; shift 2
  local l; l=$(( $(left) - 5 ))
  if [ "$l" -lt 20 ]; then log "SKIPPED $name: only ${l}s left"; return 0; fi
  [ "$limit" -gt "$l" ] && limit=$l
  log "START $name (limit ${limit}s): $*"
  timeout -k 5 "$limit" "$@" > "$OUT/$name.out" 2>&1
  local rc=$?
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then log "TIMEOUT $name after ${limit}s (partial output kept)";
  elif [ $rc -ne 0 ]; then log "FAILED $name (rc $rc): $(tail -3 "$OUT/$name.out" | tr '\n' ' ')";
  else log "DONE $name"; fi
  tail -4 "$OUT/$name.out" | sed 's/^/    /' | tee -a "$OUT/log.txt"
  return 0
}
log "issue 15 GPU run: budget ${BUDGET_S}s, device $DEV, python $PY"
"$PY" - <<'PYEOF' 2>/dev/null | tee -a "$OUT/log.txt"
import torch; print("    torch", torch.__version__, "cuda", torch.cuda.is_available(),
                    torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
PYEOF

# 1. pretraining (GPU) || benchmark data generation (CPU)
if has "$STEPS" pretrain || has "$STEPS" bench; then
GEN_OPTS='{"image_size": 128, "min_scale": 0.1, "max_scale": 0.25, "n_train": 4000, "n_val": 500, "n_test": 2000}'
[ "${TINY:-0}" = 1 ] && GEN_OPTS='{"image_size": 32, "n_train": 96, "n_val": 32, "n_test": 64}'
run gen-data 150 "$PY" -c "
import json, sys
from concurrent.futures import ProcessPoolExecutor
from labelwise.data import load_dataset
opts = json.loads(sys.argv[1])
jobs = [(d, s) for d in ('multidigits20', 'multidigits80') for s in ('train', 'val', 'test')]
def gen(job):
    return load_dataset(job[0], split=job[1], **opts).metadata.get('from_cache')
with ProcessPoolExecutor(6) as pool:
    print(dict(zip(map(str, jobs), pool.map(gen, jobs))))
" "$GEN_OPTS" &
fi
if has "$STEPS" pretrain; then
run pretrain-cnn 170 "$PY" -m labelwise.cli pretrain --config pretrain/md_resnet10t "${SHIP[@]}" $QUICK --device $DEV --workers $WORKERS ${PRETRAIN_ARGS:-} &
run pretrain-vit 170 "$PY" -m labelwise.cli pretrain --config pretrain/md_vit_tiny "${SHIP[@]}" $QUICK --device $DEV --workers $WORKERS ${PRETRAIN_ARGS:-} &
fi
wait
sync_out

# 2. the three benchmarks, concurrently; each stops starting runs 25 s before its limit
B=$(( $(left) - 35 ))
if ! has "$STEPS" bench; then
  log "benchmarks not selected (STEPS=$STEPS)"
elif [ "$B" -lt 30 ]; then
  log "SKIPPED benchmarks: only $(left)s left after pretraining"
else
  TB=$((B - 25))
  COMMON=(--device $DEV --workers $BW --time-budget $TB $QUICK ${EXTRA_ARGS:-})
  for b in $BENCHES; do
    run "$b" "$B" "$PY" "benchmarks/$b.py" "${COMMON[@]}" &
  done
  wait
fi
sync_out

# 3. tables
if ! has "$STEPS" tables; then
  :
elif [ "${TINY:-0}" = 1 ]; then
  run tables 20 "$PY" benchmarks/results_tables.py --results-dir runs/quick --stdout
else
  run tables 20 "$PY" benchmarks/results_tables.py
fi
"$PY" - <<'PYEOF' | tee -a "$OUT/log.txt"
import glob, json
for path in sorted(glob.glob("docs/results/*.json")):
    d = json.load(open(path))
    seeds = {}
    for r in d["rows"]:
        seeds.setdefault((r["dataset"], r["method"]), set()).add(r["seed"])
    print(f"    {path}: {len(d['rows'])} rows, complete={d.get('complete')}, seeds per method "
          f"{sorted({len(v) for v in seeds.values()})}")
PYEOF
log "end: $(($(date +%s) - T0))s of ${BUDGET_S}s; weights: $(ls src/labelwise/weights/*.safetensors 2>/dev/null | tr '\n' ' ')"
sync_out
