#!/usr/bin/env bash
# Python packages the tests use as independent readers (TensorBoard's EventAccumulator, safetensors,
# scipy's MAT writer, Pillow for CMYK JPEG fixtures). Installs only what is missing.
set -euo pipefail
missing=()
python3 -c "import tensorboard.backend.event_processing.event_accumulator" 2>/dev/null || missing+=(tensorboard)
python3 -c "import safetensors.numpy" 2>/dev/null || missing+=(safetensors)
python3 -c "import scipy.io" 2>/dev/null || missing+=(scipy)
python3 -c "import numpy" 2>/dev/null || missing+=(numpy)
python3 -c "import PIL" 2>/dev/null || missing+=(pillow)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "pip installing: ${missing[*]}"
python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "${missing[@]}"
