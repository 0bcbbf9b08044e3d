"""Start-up of the command line: what a user waits for before anything happens.

Each row is the median wall time of fresh processes (interleaved with the baseline, so load on
the machine hits both alike), against ``python -c pass`` measured in the same run:

- ``casebridge --help`` (the console script beside this interpreter) — target ≤ 0.35 s;
- ``import casebridge.gateway.cli`` as ``python -X importtime`` reports its cumulative time —
  target ≤ 0.25 s;
- ``casebridge translate --from jobcenter`` on one sample (imports the adapter, lxml and the
  canonical model, nothing of the web, database or broker stack).

tests/test_cli.py guards the cause (which modules ``--help`` imports), not the time.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Row
from casebridge.gateway.demo import sample_bytes

_IMPORTTIME = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \| casebridge\.gateway\.cli$", re.M)


def _casebridge() -> list[str]:
    script = Path(sys.executable).with_name("casebridge")
    found = str(script) if script.exists() else shutil.which("casebridge")
    return [found] if found else [sys.executable, "-m", "casebridge"]


def _wall(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def _import_seconds() -> float:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import casebridge.gateway.cli"],
        check=True, capture_output=True, text=True,
    )
    match = _IMPORTTIME.search(proc.stderr)
    if match is None:
        raise RuntimeError("python -X importtime did not report casebridge.gateway.cli")
    return int(match.group(1)) / 1e6


def run(quick: bool) -> list[Row]:
    """The start-up rows (see the module docstring)."""
    rounds = 3 if quick else 21
    cli = _casebridge()
    with tempfile.TemporaryDirectory() as tmp:
        sample = Path(tmp) / "zuweisung-001.xml"
        sample.write_bytes(sample_bytes("jobcenter/zuweisung-001.xml"))
        translate = [*cli, "translate", "--from", "jobcenter", "-o", "/dev/null", str(sample)]
        runs: dict[str, list[float]] = {"pass": [], "help": [], "import": [], "translate": []}
        _wall([*cli, "--help"])  # warm the file cache and the bytecode once
        for _ in range(rounds):
            runs["pass"].append(_wall([sys.executable, "-c", "pass"]))
            runs["help"].append(_wall([*cli, "--help"]))
            runs["import"].append(_import_seconds())
            runs["translate"].append(_wall(translate))
    median = {name: statistics.median(values) for name, values in runs.items()}
    base = "python -c pass (wall s)"
    note = f"median of {rounds} interleaved runs"
    return [
        Row("cli start-up", "casebridge --help, wall s", median["help"], base, median["pass"],
            "<= 0.35 s", note=note),
        Row("cli start-up", "import casebridge.gateway.cli, importtime s", median["import"],
            base, median["pass"], "<= 0.25 s"),
        Row("cli start-up", "translate one jobcenter sample, wall s", median["translate"], base,
            median["pass"]),
    ]
