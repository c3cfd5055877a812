#!/usr/bin/env bash
# Trains a task with its recommended recipe on every core (one MPI rank per core), then evaluates the
# final checkpoint and prints the test accuracies.
#
#   scripts/reproduce.sh TASK [train flags...]
#
#   TASK   mnist-mnist_m | mnist_m-mnist | svhn-mnist
#   flags  passed on to `dann-dist train` (e.g. --seed 2, --source-only, --data DIR, --out DIR, --epochs N)
#
# Data (default: the repository's data/): a missing dataset is fetched into it with scripts/download-data.sh
# first (copied from a local mirror instead when DATA_MIRROR names one, or ../shared/data exists beside the
# clone). svhn-mnist falls back to the bundled 1,083-image SVHN sample, and says so, when the full SVHN cannot be
# had. Set NP to choose the rank count (default: the number of cores), DANN_DIST to use a binary other than a
# fresh `swift build -c release`.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
task="${1:-}"
case "$task" in
    mnist-mnist_m) source=mnist target=mnist_m ;;
    mnist_m-mnist) source=mnist_m target=mnist ;;
    svhn-mnist) source=svhn target=mnist ;;
    -h|--help|"") sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; [ -n "$task" ]; exit $? ;;
    *) echo "reproduce.sh: unknown task '$task' (expected mnist-mnist_m, mnist_m-mnist or svhn-mnist)" >&2; exit 2 ;;
esac
shift
flags=("$@")

# The data and run folders the flags name, relative to where the script was started.
data="data" out=""
for ((i = 0; i < ${#flags[@]}; i++)); do
    case "${flags[$i]}" in
        --data) data="${flags[$((i + 1))]:-}" ;;
        --out) out="${flags[$((i + 1))]:-}" ;;
    esac
done
[ "$data" = "data" ] && data="$root/data"
stamp="$(date +%Y%m%dT%H%M%S)"
[ -n "$out" ] || { out="$root/runs/reproduce-$task-$stamp"; flags+=(--out "$out"); }
has_data=0
for ((i = 0; i < ${#flags[@]}; i++)); do [ "${flags[$i]}" = "--data" ] && has_data=1; done
[ "$has_data" = 1 ] || flags+=(--data "$data")

mirror=()   # an optional local copy of the datasets to fetch from (DATA_MIRROR), else the internet
mirror_dir="${DATA_MIRROR:-$root/../shared/data}"
[ -d "$mirror_dir" ] && mirror=(--from "$mirror_dir")
need() {   # need NAME PATH: fetch dataset NAME unless PATH exists
    [ -e "$2" ] && return 0
    echo "reproduce: $1 is missing under $data; fetching it with scripts/download-data.sh"
    bash "$root/scripts/download-data.sh" "${mirror[@]}" --dest "$data" --only "$1" || true
}
for name in "$source" "$target"; do
    case "$name" in
        mnist) need mnist "$data/mnist/t10k-labels-idx1-ubyte.gz" ;;
        mnist_m) need mnist_m "$data/mnist_m"
                 [ -e "$data/mnist_m" ] || { echo "reproduce: no MNIST-M under $data (set MNIST_M_URL, or --data a folder that has it)" >&2; exit 1; } ;;
        svhn) need svhn "$data/svhn/train_32x32.mat"
              [ -e "$data/svhn/train_32x32.mat" ] || echo "reproduce: the full SVHN is not available: falling back to the bundled sample (1,083 training images, no SVHN test set)" ;;
    esac
done

binary="${DANN_DIST:-}"   # a prebuilt binary (the tests' own build); otherwise build release
if [ -z "$binary" ]; then
    (cd "$root" && swift build -c release >/dev/null)
    binary="$root/.build/release/dann-dist"
fi
np="${NP:-$(nproc)}"
launch=()
if [ "$np" -gt 1 ]; then
    launch=(mpirun -np "$np" --bind-to none)
    [ "$(id -u)" -eq 0 ] && launch+=(--allow-run-as-root)
fi
echo "reproduce: $task on $np rank(s): dann-dist train --source $source --target $target ${flags[*]}"
start=$(date +%s)
"${launch[@]}" "$binary" train --source "$source" --target "$target" "${flags[@]}"
echo "reproduce: trained in $(( $(date +%s) - start )) s; evaluating $out"
"$binary" eval --checkpoint "$out" --data "$data"
