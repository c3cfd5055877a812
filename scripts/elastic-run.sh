#!/usr/bin/env bash
# Runs `mpirun … dann-dist train FLAGS` and, when the job fails (a rank killed or crashed, a host lost),
# starts it again with --resume from the run's last checkpoint, up to --max-restarts times.
#
#   scripts/elastic-run.sh [--max-restarts N] [--np N] [--np-on-restart K] [--] train flags...
#
#   --max-restarts N   restarts allowed after the first attempt (default 3; 0 = supervise only)
#   --np N             ranks of the first attempt (default: $NP, else the number of cores)
#   --np-on-restart K  ranks of every restart (default: N), e.g. fewer after a host was lost
#   train flags        passed to `dann-dist train` unchanged (restarts add --resume); --out DIR is required,
#                      since its checkpoints/latest is what a restart resumes from
#
# A failed attempt is restarted only when a restart can help:
#   - it printed `dann-dist: error:` (bad flag, missing data, unwritable --out, NaN loss, a checkpoint of
#     another run): not restarted, the same error would come back;
#   - this run has no checkpoint yet (or a first attempt without --resume wrote none): not restarted,
#     there is nothing to resume from;
#   - two attempts in a row ended without writing a new checkpoint: not restarted, the failure recurs
#     before any progress (one such attempt is retried: a rank may die again just after a restart);
#   - otherwise (a rank killed by a signal or exiting non-zero, mpirun losing a host) it is restarted,
#     while restarts are left.
# Each restart prints one line on stderr (attempt, reason, exit status, np); the script exits 0 when an
# attempt succeeds, else with the exit status of the last attempt. SIGINT/SIGTERM end the job (as to
# mpirun) without a restart; SIGUSR1 is passed to mpirun, which stops the job cleanly at a checkpoint.
# A restart at the same np gives bitwise the weights of an uninterrupted run; at another np, the same
# weights up to float rounding (within 1e-4; docs/distributed.md).
#
# Environment: DANN_DIST a prebuilt binary (default: a fresh `swift build -c release`); MPIRUN_FLAGS extra
# mpirun flags, split on spaces (e.g. "--hostfile hostfiles/cluster --map-by node"; not -np); and
# MPIRUN_FLAGS_ON_RESTART the flags of restarts (default: MPIRUN_FLAGS), e.g. a hostfile without a lost host.
# The checkpoints are read where this script runs: run it on rank 0's host (mpirun's first) or on a
# shared --out.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
say() { echo "elastic-run: $*" >&2; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
count() {   # count NAME VALUE MIN: VALUE must be an integer ≥ MIN
    [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge "$3" ] && return 0
    say "$1 needs an integer ≥ $3, not '$2'"; exit 2
}

max_restarts=3 np="${NP:-$(nproc)}" np_restart=""
while [ $# -gt 0 ]; do
    case "$1" in
        --max-restarts) count "$1" "${2:-}" 0; max_restarts="$2"; shift 2 ;;
        --np) count "$1" "${2:-}" 1; np="$2"; shift 2 ;;
        --np-on-restart) count "$1" "${2:-}" 1; np_restart="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        *) break ;;
    esac
done
count "NP" "$np" 1
np_restart="${np_restart:-$np}"
flags=("$@")

out="" resumes=0
for ((i = 0; i < ${#flags[@]}; i++)); do
    case "${flags[$i]}" in
        --out) out="${flags[$((i + 1))]:-}" ;;
        --out=*) out="${flags[$i]#--out=}" ;;
        --resume) resumes=1 ;;
    esac
done
[ -n "$out" ] || { say "give the run's folder with --out DIR: restarts resume from its checkpoints"; exit 2; }
latest="$out/checkpoints/latest"

binary="${DANN_DIST:-}"
if [ -z "$binary" ]; then
    (cd "$root" && swift build -c release >/dev/null)
    binary="$root/.build/release/dann-dist"
fi
# Open MPI refuses root (containers, CI) unless told twice.
[ "$(id -u)" -eq 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# Which checkpoint `latest` names and when it was replaced: a checkpoint written during an attempt changes
# it even when a fresh run rewrites a step number an older run in the same folder had.
checkpoint_mark() { [ -f "$latest" ] && echo "$(tr -d '[:space:]' < "$latest") $(stat -c %y "$latest")" || true; }
checkpoint_name() { [ -f "$latest" ] && tr -d '[:space:]' < "$latest" || true; }

launcher() {   # launcher NP FLAGS: the mpirun command line of one attempt, in the array `launch`
    local ranks="$1" extra=() word
    read -r -a extra <<< "$2"
    launch=(mpirun -np "$ranks")
    [[ " $2 " == *" --bind-to "* ]] || launch+=(--bind-to none)
    # More ranks than cores here needs --oversubscribe; with hosts named, their slots decide, and more ranks
    # than slots is a mistake mpirun should report rather than hide.
    if [ "$ranks" -gt "$(nproc)" ]; then
        local remote=0
        for word in "${extra[@]}"; do case "$word" in --hostfile|--machinefile|-H|--host|-hostfile) remote=1 ;; esac; done
        [ "$remote" = 1 ] || launch+=(--oversubscribe)
    fi
    launch+=("${extra[@]}")
}

# What mpirun said about the failure, from the attempt's stderr.
describe() {   # describe LOG STATUS
    local line
    if line="$(grep -m1 -o 'dann-dist: error: .*' "$1")"; then echo "$line"
    elif line="$(grep -m1 -o 'process rank [0-9]* with PID [0-9]* on node [^ ]* exited on signal [0-9]* ([^)]*)' "$1")"; then
        sed -E 's/process (rank [0-9]*) with PID [0-9]* on node ([^ ]*) exited on signal ([0-9]*) \(([^)]*)\)/\1 on \2 killed by signal \3 (\4)/' <<< "$line"
    elif grep -qiE 'lost communication with a remote daemon|daemon .*(died|failed)|unable to reliably start' "$1"; then
        echo "a host was lost (mpirun lost a daemon)"
    elif line="$(grep -m1 -oE 'Exit code: +[0-9]+' "$1")"; then echo "a rank exited with status ${line##* }"
    elif [ "$2" -gt 128 ]; then echo "killed by signal $(( $2 - 128 ))"
    else echo "mpirun failed"
    fi
}

work="$(mktemp -d)"
pending="" stopping=""
trap 'rm -rf "$work"' EXIT
trap 'pending=TERM stopping=INT' INT
trap 'pending=TERM stopping=TERM' TERM
trap 'pending=USR1' USR1

attempt=0 restarts=0 stalls=0 ranks="$np" mpirun_flags="${MPIRUN_FLAGS:-}"
while :; do
    attempt=$((attempt + 1))
    arguments=("${flags[@]}")
    [ "$attempt" -gt 1 ] && [ "$resumes" = 0 ] && arguments+=(--resume)
    before="$(checkpoint_mark)"
    [ -z "$stopping" ] || { say "stopped by SIG$stopping before attempt $attempt"; exit $(( 128 + $(kill -l "$stopping") )); }
    launcher "$ranks" "$mpirun_flags"
    log="$work/attempt-$attempt.stderr"
    # stderr goes to the terminal as usual and to a file, to tell the failure's kind afterwards.
    exec {errors}> >(tee "$log" >&2)
    tee_pid=$!
    # In the background, so that a signal to this script is handled (and passed on) at once, not when mpirun
    # ends; stdin from /dev/null, as mpirun reads its stdin (to forward it to rank 0) and would take ours.
    "${launch[@]}" "$binary" train "${arguments[@]}" < /dev/null 2>&"$errors" &
    job=$!
    exec {errors}>&-
    while :; do
        status=0
        wait "$job" || status=$?
        [ -n "$pending" ] || break
        signal="$pending" pending=""
        if kill -0 "$job" 2>/dev/null; then kill "-$signal" "$job"; continue; fi
        # mpirun ended as the signal came: its own status, unless that wait already reported it (127).
        again=0
        wait "$job" 2>/dev/null || again=$?
        [ "$again" -eq 127 ] || status="$again"
        break
    done
    wait "$tee_pid" 2>/dev/null || true
    [ "$status" -eq 0 ] && exit 0

    reason="$(describe "$log" "$status")"
    after="$(checkpoint_mark)"
    resumed=$(( attempt > 1 || resumes ))
    progressed=0
    [ -n "$after" ] && [ "$after" != "$before" ] && progressed=1
    why=""
    if [ -n "$stopping" ]; then why="stopped by SIG$stopping"
    elif grep -q 'dann-dist: error:' "$log"; then why="dann-dist reported the error itself, a restart would repeat it"
    elif [ -z "$after" ] || { [ "$resumed" = 0 ] && [ "$progressed" = 0 ]; }; then
        why="the run wrote no checkpoint to resume from"
    elif [ "$progressed" = 0 ] && [ "$stalls" -ge 1 ]; then why="two attempts in a row ended without a new checkpoint"
    elif [ "$restarts" -ge "$max_restarts" ]; then why="no restarts left (--max-restarts $max_restarts)"
    fi
    if [ -n "$why" ]; then
        say "attempt $attempt (np $ranks) failed: $reason, exit status $status; not restarted: $why"
        exit "$status"
    fi
    if [ "$progressed" = 1 ]; then stalls=0; else stalls=$((stalls + 1)); fi
    restarts=$((restarts + 1))
    say "attempt $attempt (np $ranks) failed: $reason, exit status $status; restart $restarts/$max_restarts: attempt $((attempt + 1)) resumes from $(checkpoint_name) with np $np_restart"
    ranks="$np_restart"
    mpirun_flags="${MPIRUN_FLAGS_ON_RESTART:-${MPIRUN_FLAGS:-}}"
done
