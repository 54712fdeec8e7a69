#!/usr/bin/env bash
# The checks that need a GPU, as one command on a fresh CUDA machine, in under 10 minutes: install,
# see the device, the `gpu`-marked tests, then the CUDA benchmark rows of the kernels, RecNet and DCNet.
#
#   bash bench/device_check.sh            # from anywhere; writes under $OUT (default out/device)
#
# Needs this source tree with its assets (../shared beside the checkout, as for the tests), an NVIDIA
# driver, and pip access for `.[dev,bench,gpu]`: torch (the Linux wheels on PyPI are CUDA builds) and
# cupy-cuda13x. JR2NET_SKIP_INSTALL=1 skips the install on a machine already set up; PYTHON picks the
# interpreter (default python3). Each step runs under its own timeout with its output in
# $OUT/<step>.log; a failed step does not stop the next ones, and the script exits 1 when any failed.
# $OUT/summary.json lists every step with its status and seconds.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-out/device}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$OUT"
summary=()
failures=0

# step NAME SECONDS COMMAND...: run COMMAND under a timeout, log it, record how it went.
step() {
    local name=$1 limit=$2 status=ok code=0 started=$SECONDS
    shift 2
    echo "== $name (timeout ${limit}s): $*"
    timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1 || code=$?
    if [ "$code" -ne 0 ]; then
        status=failed
        failures=$((failures + 1))
        [ "$code" -eq 124 ] && status=timed_out
    fi
    local seconds=$((SECONDS - started))
    echo "   $status (exit $code) in ${seconds}s; last lines of $OUT/$name.log:"
    tail -n 8 "$OUT/$name.log" | sed 's/^/   | /'
    summary+=("{\"step\": \"$name\", \"status\": \"$status\", \"exit\": $code, \"seconds\": $seconds}")
}

if [ "${JR2NET_SKIP_INSTALL:-0}" != 1 ]; then
    step install 150 "$PYTHON" -m pip install --disable-pip-version-check -e ".[dev,bench,gpu]"
fi
step cuda 30 "$PYTHON" -c "import torch; from jr2net.kernels.cuda_runtime import cuda_unavailable_reason as why; \
reason = why(); print(torch.__version__, torch.version.cuda, reason or torch.cuda.get_device_name()); raise SystemExit(reason)"
step gpu_tests 140 "$PYTHON" -m pytest -m gpu -q -p no:cacheprovider --junitxml "$OUT/gpu_tests.xml"
step bench_kernels 60 "$PYTHON" -m bench.kernels --device cuda --repeats 30 --out "$OUT/bench_kernels_gpu.json"
step bench_recnet 120 "$PYTHON" -m bench.recnet --skip-accuracy --repeats 30 --out "$OUT/bench_recnet_gpu.json"
step bench_dcnet 40 "$PYTHON" -m bench.dcnet --repeats 20 --out "$OUT/bench_dcnet_gpu.json"

joined=$(printf '%s,\n    ' "${summary[@]}")
printf '{\n  "failed": %d,\n  "steps": [\n    %s\n  ]\n}\n' "$failures" "${joined%,*}" >"$OUT/summary.json"
echo "== $failures of ${#summary[@]} steps failed; summary in $OUT/summary.json"
[ "$failures" -eq 0 ]
