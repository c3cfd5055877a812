#!/usr/bin/env bash
# Trains an MNIST→MNIST-M model with the task's recipe and ships its weights as
# data/pretrained/<arch>-mnist-mnist_m/model.safetensors, with a README line (command, accuracy, date).
#
#   scripts/train-pretrained.sh [--data DIR] [--np N] [--arch A] [--epochs E] [-- extra train flags]
#
#   --data DIR   datasets (default: the repository's data/). mnist/ and mnist_m/ are needed; MNIST-M is not
#                committed: fetch it into data/ with scripts/download-data.sh --only mnist_m, or give a DIR with it
#   --np N       MPI ranks (default: the number of cores; any N gives the same result up to float rounding)
#   --arch A     network (default small-bn, the recipe's)
#   --epochs E   epochs over MNIST train (default 10, the recipe's; 468 steps each at batch 128)
#
# Run from anywhere: --data is relative to where it was started, other paths to the repository root. The run
# folder stays under runs/.
set -euo pipefail

data="" np="$(nproc)" arch=small-bn epochs=10 extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --data) data="${2:?--data needs a directory}"; shift 2 ;;
        --np) np="${2:?--np needs a number}"; shift 2 ;;
        --epochs) epochs="${2:?--epochs needs a number}"; shift 2 ;;
        --arch) arch="${2:?--arch needs a network}"; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "train-pretrained.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

# --data is relative to where the script was started; the default is the repository's data/.
root="$(cd "$(dirname "$0")/.." && pwd)"
[ -n "$data" ] || data="$root/data"
data="$(realpath -m "$data")"
if [ ! -e "$data/mnist_m" ]; then
    echo "train-pretrained.sh: no MNIST-M under $data (fetch it with scripts/download-data.sh --only mnist_m, or give --data DIR)" >&2
    exit 1
fi
cd "$root"
swift build -c release
bin=.build/release/dann-dist
out="runs/pretrained-$arch-mnist-mnist_m-$(date -u +%Y%m%d-%H%M%S)"
dest="data/pretrained/$arch-mnist-mnist_m"

train=("$bin" train --arch "$arch" --source mnist --target mnist_m --data "$data" --out "$out"
       --epochs "$epochs" --seed 1 --eval-every 468 "${extra[@]}")
if [ "$np" -gt 1 ]; then
    train=(mpirun -np "$np" --bind-to none "${train[@]}")
    [ "$(id -u)" -eq 0 ] && train=(mpirun --allow-run-as-root "${train[@]:1}")
fi
echo "+ ${train[*]}"
"${train[@]}"

# The newest complete checkpoint (the trainer writes checkpoints/latest last).
checkpoint="$out/checkpoints/$(cat "$out/checkpoints/latest")"
mkdir -p "$dest"
cp "$checkpoint/model.safetensors" "$dest/model.safetensors.partial"
mv "$dest/model.safetensors.partial" "$dest/model.safetensors"

"$bin" eval --checkpoint "$dest/model.safetensors" --data "$data" --json > "$dest/eval.json"
"$bin" eval --checkpoint "$dest/model.safetensors" --data "$data"
accuracy=$(python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
print(", ".join("%s %.4f" % (k, v["accuracy"]) for k, v in r.items()))' "$dest/eval.json")

readme="data/pretrained/README.md"
[ -f "$readme" ] || printf '# Pretrained weights\n\nOne line per shipped model: folder, command, test accuracy, date.\n\n' > "$readme"
grep -v "^- \`$arch-mnist-mnist_m/\`" "$readme" > "$readme.partial" || true
echo "- \`$arch-mnist-mnist_m/\`: \`${train[*]}\`; ${accuracy}; $(date -u +%Y-%m-%d)" >> "$readme.partial"
mv "$readme.partial" "$readme"
echo "shipped $dest/model.safetensors ($accuracy)"
