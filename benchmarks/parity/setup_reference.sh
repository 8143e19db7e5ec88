#!/usr/bin/env bash
# Set up the reference benchmark for the parity harness: a checkout of BackdoorBench at f02e353
# (outside this repository) and a virtual environment of its own with its packages at current versions.
#
#   benchmarks/parity/setup_reference.sh CHECKOUT VENV [GIT_DIR_OR_URL]
#
# CHECKOUT: where the reference's files are (made from GIT_DIR_OR_URL at f02e353 if it does not exist;
#           a copy that lacks a few large files, e.g. analysis/Demos/*.ipynb, is fine: none is needed).
# VENV:     the reference's virtual environment (Python 3.11), created if missing.
set -euo pipefail
CHECKOUT=${1:?usage: setup_reference.sh CHECKOUT VENV [GIT_DIR_OR_URL]}
VENV=${2:?usage: setup_reference.sh CHECKOUT VENV [GIT_DIR_OR_URL]}
SRC=${3:-}
COMMIT=f02e353
PY=${PYTHON:-python3.11}

if [ ! -d "$CHECKOUT/attack" ]; then
  [ -n "$SRC" ] || { echo "no checkout at $CHECKOUT: pass the reference's git dir or URL as the third argument" >&2; exit 2; }
  mkdir -p "$CHECKOUT"
  if [ -d "$SRC" ]; then
    # export every file whose object is present (a partial mirror may lack a few large blobs)
    git -C "$SRC" ls-tree -r --full-tree "$COMMIT" | while read -r _mode type obj path; do
      [ "$type" = blob ] || continue
      if git -C "$SRC" cat-file -e "$obj" 2>/dev/null; then
        mkdir -p "$CHECKOUT/$(dirname "$path")"
        git -C "$SRC" cat-file blob "$obj" > "$CHECKOUT/$path"
      else
        echo "missing in $SRC (not needed): $path" >&2
      fi
    done
  else
    git clone "$SRC" "$CHECKOUT" && git -C "$CHECKOUT" checkout "$COMMIT"
  fi
fi
mkdir -p "$CHECKOUT/record"

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
P="$VENV/bin/python"
"$P" -m pip install -q torch==2.14.1 torchvision==0.29.1
# The reference's sh/install.sh, at current versions. Left out: its visualisation-only packages
# (shap, grad-cam, omnixai, plotly, umap-learn, graphviz, hiddenlayer, pytorchviz from git,
# PyHessian, torchmetrics) which no attack or defense imports.
# setuptools<81: pytorch-wavelets imports pkg_resources. PyWavelets: pytorch-wavelets imports pywt
# without declaring it.
"$P" -m pip install -q "setuptools<81" opencv-python pandas Pillow scikit-learn scikit-image tqdm pyyaml \
  tensorboard kornia imageio matplotlib scipy pytorch-wavelets PyWavelets numba tabulate seaborn keras
"$P" -c "import torch, torchvision, cv2, kornia, pytorch_wavelets, yaml; print('reference environment ready:', torch.__version__)"
