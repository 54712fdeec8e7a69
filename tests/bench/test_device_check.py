"""``bench/device_check.sh``, the one command of a GPU machine: it parses, runs every step through
``$PYTHON`` (a stand-in here), keeps going past a failed step and then exits non-zero."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "device_check.sh"
STEPS = {  # step -> what its command line must contain
    "install": "-m pip install --disable-pip-version-check -e .[dev,bench,gpu]",
    "cuda": "cuda_unavailable_reason",
    "gpu_tests": "-m pytest -m gpu",
    "bench_kernels": "-m bench.kernels --device cuda",
    "bench_recnet": "-m bench.recnet --skip-accuracy",
    "bench_dcnet": "-m bench.dcnet",
}


def test_the_script_parses() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_every_step_runs_and_one_failure_fails_the_whole(tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    fake = tmp_path / "python"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {calls}\ncase "$*" in *bench.kernels*) exit 3;; esac\n')
    fake.chmod(0o755)
    out = tmp_path / "out"
    environment = {**os.environ, "PYTHON": str(fake), "OUT": str(out), "JR2NET_SKIP_INSTALL": "0"}
    result = subprocess.run(
        ["bash", str(SCRIPT)], env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1, result.stdout + result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert [s["step"] for s in summary["steps"]] == list(STEPS)
    assert {s["step"]: s["status"] for s in summary["steps"] if s["status"] != "ok"} == {
        "bench_kernels": "failed"
    }
    assert summary["failed"] == 1
    lines = calls.read_text().replace("\n", " ")
    for step, command in STEPS.items():
        assert command in lines, step
        assert (out / f"{step}.log").exists(), step
    assert str(out) in lines, "the reports go under $OUT"
