"""The benchmark script runs and reports every case (speed itself is never asserted in
tests)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmark_reports_every_case():
    res = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_core.py"),
            "--quick",
            "--markdown",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    out = res.stdout
    for case in [
        "max pool 2×2/2",
        "max pool 3×3/2",
        "conv 8→16 3×3 pad 1 stride 1",
        "stride 2",
        "float32",
        "float64",
        "ReLU",
        "tiny net 1×1×6×6",
        "goal",
    ]:
        assert case in out, f"{case!r} missing from the benchmark table:\n{out}"
    rows = [
        line
        for line in out.splitlines()
        if line.startswith("| ") and "case" not in line
    ]
    assert len(rows) == 10
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1].endswith(("µs", "ms")), row
