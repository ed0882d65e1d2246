#!/usr/bin/env bash
# Device check (issue 15): the real-size model costs of benchmarks/real_size.py on CUDA.
#
# Run from the repository root on the lent GPU machine, e.g. through the device tool:
#   bash benchmarks/device_check.sh            (carry .whl if the wheels below were fetched)
# It installs the project (torch==2.14.1 and torchvision==0.29.1 as pinned, then hoopray with
# -e .), runs real_size.py on CUDA (bf16 autocast) and writes under $OUT:
#   real_size.txt      the table and the result line (fps_ratio against the notebook)
#   device_check.log   everything printed, install included
# within 8 minutes (install <= 2, the benchmark <= 6; each step has its own timeout).
#
# The GPU machine reaches no package index. pip then fails fast and the image's own torch,
# transformers and peft are used (the log says which versions ran). Packages the image lacks
# (supervision, rfdetr, pycocotools and their needs) must travel as wheels in .whl/, fetched
# here beforehand as the device README describes, e.g.:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl supervision==0.30.9 rfdetr==1.11.2 pycocotools==2.0.11
# (plus whatever `unzip -p .whl/NAME-*.whl '*/METADATA' | grep ^Requires-Dist` names that the
# image does not have).
set -uo pipefail

OUT="${OUT:-/tmp/hoopray-device-check}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1

run() {
  echo "== $(date -u +%H:%M:%S) nvidia-smi"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

  echo "== $(date -u +%H:%M:%S) install"
  if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
  fi
  timeout 90 "$PY" -m pip install -q --retries 0 --timeout 10 \
    torch==2.14.1 torchvision==0.29.1 \
    || echo "pip could not install torch==2.14.1 torchvision==0.29.1: the image's torch is used"
  # The project pins Python 3.11 and its full dependency set; here only hoopray itself is
  # installed, on the image's Python, and the dependencies come from the image and .whl/.
  timeout 60 "$PY" -m pip install -q --no-deps --no-build-isolation --ignore-requires-python \
    -e . || echo "pip install -e . failed: hoopray is imported from the working tree"
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
  "$PY" - <<'EOF'
import importlib

for name in ("torch", "torchvision", "transformers", "peft", "supervision", "rfdetr", "pycocotools"):
    try:
        module = importlib.import_module(name)
        print(f"{name} {getattr(module, '__version__', '?')}")
    except Exception as err:  # noqa: BLE001 - report and go on: real_size.py will fail clearly
        print(f"{name} MISSING ({type(err).__name__}: {err})")
import torch

print("cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
EOF

  echo "== $(date -u +%H:%M:%S) benchmarks/real_size.py --device cuda"
  timeout 360 "$PY" benchmarks/real_size.py --device cuda --out "$OUT/real_size.txt"
  local status=$?
  echo "== $(date -u +%H:%M:%S) done (real_size.py exit $status)"
  return "$status"
}

run 2>&1 | tee "$OUT/device_check.log"
exit "${PIPESTATUS[0]}"
