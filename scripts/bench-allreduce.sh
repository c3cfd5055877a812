#!/bin/sh
# Compares one process with 2 BLAS threads against 2 ranks with 1 thread each, and the three gradient
# exchanges (--allreduce shared / buckets / single), on one network (default seed) at batch 128 + 128, from
# --timeline traces. Runs the configurations in turn ROUNDS times so that background load hits them alike.
#
#   scripts/bench-allreduce.sh [DATA_DIR] [ROUNDS] [STEPS] [ARCH]      (default: data 3 10 seed)
#
# Use a data folder without test sets (or accept that the final evaluation is not timed: the summary
# covers training steps only). Output: runs under ${TMPDIR:-/tmp}/dann-bench-allreduce/.
set -eu
data=${1:-data}
rounds=${2:-3}
steps=${3:-10}
arch=${4:-seed}
bin=${DANN_DIST:-.build/release/dann-dist}
out=${TMPDIR:-/tmp}/dann-bench-allreduce
here=$(dirname "$0")
mkdir -p "$out"
rm -f "$out"/*.json   # the summary reads every trace there: none from an earlier run
common="train --arch $arch --steps $steps --batch-size 128 --limit-source $((steps * 128)) --limit-target $((steps * 128))
        --data $data --source mnist --target mnist --checkpoint-every 100000 --eval-every 100000"
run() {  # name, then the command's words
    name=$1; shift
    rm -rf "$out/$name"
    "$@" --out "$out/$name" --timeline "$out/$name.json" > "$out/$name.log" 2>&1
}
round=1
while [ "$round" -le "$rounds" ]; do
    run "np1-t2-$round" "$bin" $common --threads 2
    run "np2-t1-shared-$round" mpirun -np 2 --bind-to none "$bin" $common --threads 1 --allreduce shared
    run "np2-t1-buckets-$round" mpirun -np 2 --bind-to none "$bin" $common --threads 1 --allreduce buckets
    run "np2-t1-single-$round" mpirun -np 2 --bind-to none "$bin" $common --threads 1 --allreduce single
    round=$((round + 1))
done
python3 "$here/timeline-summary.py" "$out"/*.json
