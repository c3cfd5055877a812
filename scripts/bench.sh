#!/usr/bin/env bash
# Builds release and runs `dann-dist bench` for both architectures; writes one JSON object per run to
# $OUT (default .build/bench-results.jsonl) and prints a small table.
#   scripts/bench.sh [--threads N] [--batch-size B] [--steps S] [--out FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2; batch=128; steps=10; out=.build/bench-results.jsonl
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --batch-size) batch=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--threads N] [--batch-size B] [--steps S] [--out FILE]" >&2; exit 2 ;;
  esac
done
swift build -c release --product dann-dist >&2
: > "$out"
for arch in seed small; do
  arch_steps=$steps
  [ "$arch" = small ] && arch_steps=$((steps * 5))
  .build/release/dann-dist bench --arch "$arch" --threads "$threads" --batch-size "$batch" \
    --steps "$arch_steps" --warmup 2 --json >> "$out"
done
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
print(f"{'arch':6} {'B':>4} {'thr':>3} {'ms/step':>8} {'img/s':>8} {'GFLOP/s':>8} {'peak':>7} {'frac':>5}   "
      "E fwd / heads / E bwd / opt (ms)")
for r in rows:
    p = r['phases_ms']
    print(f"{r['arch']:6} {r['batch_size']:>4} {r['threads']:>3} {r['step_s'] * 1000:8.1f} {r['images_per_s']:8.1f} "
          f"{r['gflops']:8.1f} {r['sgemm_peak_gflops']:7.1f} {r['fraction_of_peak']:5.2f}   "
          f"{p['extractor_forward']:.1f} / {p['heads']:.1f} / {p['extractor_backward']:.1f} / {p['optimizer']:.1f}")
print(f"(json: {sys.argv[1]})")
PY
