#!/usr/bin/env bash
# bdb developer entry point.
#   ./dev.sh demo          set up .venv (bdcore, the CLI, every plugin under plugins/) and run the demo benchmark
#   ./dev.sh test [--isa avx2|avx512|default] [args]
#                          set up .venv and run the tests (extra args go to pytest); --isa caps the kernels
#                          torch and oneDNN may use, to reproduce a CPU of that instruction set
#   ./dev.sh setup         only set up .venv
#   ./dev.sh docs          build the public API reference (docs/api -> docs/_build/api)
#   ./dev.sh wheels [dirs] build wheels of bdcore and every plugin (or of the given project dirs) into
#                          $WHEELHOUSE (default ./wheelhouse), offline: pip install --find-links wheelhouse bdb-attack-wanet
set -euo pipefail
cd "$(dirname "$0")"
VENV=.venv
PY=$VENV/bin/python

setup() {
  [ -x "$PY" ] || python3 -m venv "$VENV"
  # reinstall only when dev.sh, a pyproject or the set of plugins changed
  local stamp
  stamp=$( (ls -d plugins/*/; cat dev.sh pyproject.toml plugins/*/pyproject.toml) 2>/dev/null | sha256sum | cut -c1-16)
  if [ -f "$VENV/.bdb-stamp" ] && [ "$(cat "$VENV/.bdb-stamp")" = "$stamp" ] && "$PY" -c "import bdcore, torch" 2>/dev/null; then
    return
  fi
  echo "setting up $VENV (first time: a few minutes) ..." >&2
  if ! "$PY" -c "import torch, torchvision" 2>/dev/null; then
    "$PY" -m pip install -q torch==2.14.1 torchvision==0.29.1
  fi
  "$PY" -m pip install -q "setuptools>=64" "pytest>=8" "pytest-xdist>=3" "pytest-timeout>=2" "sphinx>=7"
  # the optional extras, so that the embedded datasets, the report, timm models, the Ray executor, Parquet export
  # and the umap/shap analysis tools are there (and tested)
  local editables=(-e ".[all,ray,parquet,analysis]")
  for d in plugins/*/; do
    [ -f "$d/pyproject.toml" ] && editables+=(-e "$d")
  done
  "$PY" -m pip install -q --no-build-isolation "${editables[@]}"
  echo "$stamp" > "$VENV/.bdb-stamp"
}

wheels() {
  local out=${WHEELHOUSE:-wheelhouse}
  local dirs=("$@")
  if [ ${#dirs[@]} -eq 0 ]; then
    dirs=(.)
    for d in plugins/*/; do
      [ -f "$d/pyproject.toml" ] && dirs+=("$d")
    done
  fi
  mkdir -p "$out"
  for d in "${dirs[@]}"; do rm -rf "$d/build"; done  # no stale modules from an earlier build in a wheel
  # --no-build-isolation: build with the setuptools already in .venv (no network)
  "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$out" "${dirs[@]}"
  echo "wrote ${#dirs[@]} wheel(s) to $out" >&2
}

cmd=${1:-help}
shift || true
case "$cmd" in
  setup) setup ;;
  wheels) setup; wheels "$@" ;;
  demo) setup; exec "$VENV/bin/bdb" demo "$@" ;;
  docs) setup; exec "$PY" -m sphinx -W --keep-going -b html docs/api docs/_build/api ;;
  # Tests: one torch thread per worker, one worker per core. CPU convolutions give slightly
  # different numbers with different thread counts, and the plugins' thresholds were measured
  # single-threaded; xdist keeps every core busy.
  # --isa: the kernel set, as torch would pick it on a CPU of that instruction set (the verdicts must be the
  # same on every one: see tests/THRESHOLDS.md).
  test)
    if [ "${1:-}" = "--isa" ]; then
      case "${2:-}" in
        avx2) export ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 ;;
        avx512) export ONEDNN_MAX_CPU_ISA=AVX512_CORE ATEN_CPU_CAPABILITY=avx512 ;;
        default) export ONEDNN_MAX_CPU_ISA=SSE41 ATEN_CPU_CAPABILITY=default ;;
        *) echo "error: --isa takes avx2, avx512 or default (got '${2:-}')" >&2; exit 2 ;;
      esac
      shift 2
    fi
    setup; OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 exec "$PY" -m pytest -q -n "$(nproc)" --dist worksteal "$@" ;;
  *) sed -n '2,10p' "$0"; exit 2 ;;
esac
