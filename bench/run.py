"""Run every benchmark of the project and print one table.

    python -m bench.run            # full sizes, as reported in the issues
    python -m bench.run --quick    # small sizes, a smoke test of the benchmarks themselves
    python -m bench.run --only adapters,consent
    python -m bench.run --only e2e --markdown   # the table as Markdown (docs/capacity.md)
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
import time
from pathlib import Path

from bench.common import Row

BENCH_DIR = Path(__file__).parent


def discover() -> list[str]:
    """Names of the benchmark modules (``bench_<name>.py`` → ``<name>``)."""
    return sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules([str(BENCH_DIR)])
        if m.name.startswith("bench_")
    )


def fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def print_table(rows: list[Row]) -> None:
    headers = ["benchmark", "metric", "value", "baseline", "baseline value", "ratio", "target"]
    table = [
        [r.benchmark, r.metric, fmt(r.value), r.baseline_name or "-", fmt(r.baseline),
         fmt(r.ratio, 3), r.target or "-"]
        for r in rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in table)) if table else len(h)
              for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("-" * len(line))
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    notes = [r for r in rows if r.note]
    if notes:
        print()
        for r in notes:
            print(f"* {r.benchmark} / {r.metric}: {r.note}")


def print_markdown(rows: list[Row]) -> None:
    """The same table as Markdown, ready to paste into docs/*.md."""
    print("| benchmark | metric | value | baseline | baseline value | ratio | target |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.benchmark} | {r.metric} | {fmt(r.value)} | {r.baseline_name or '-'} | "
              f"{fmt(r.baseline)} | {fmt(r.ratio, 3)} | {r.target or '-'} |")
    notes = [r for r in rows if r.note]
    if notes:
        print()
        for r in notes:
            print(f"- {r.benchmark} / {r.metric}: {r.note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON to this file")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)
    names = discover()
    if args.only:
        wanted = {n.strip() for n in args.only.split(",") if n.strip()}
        unknown = wanted - set(names)
        if unknown:
            print(f"unknown benchmark(s): {', '.join(sorted(unknown))}; have: {', '.join(names)}",
                  file=sys.stderr)
            return 2
        names = [n for n in names if n in wanted]
    rows: list[Row] = []
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        module = importlib.import_module(f"bench.bench_{name}")
        rows.extend(module.run(quick=args.quick))
        print(f"  {name} took {time.perf_counter() - start:.1f}s", file=sys.stderr, flush=True)
    (print_markdown if args.markdown else print_table)(rows)
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ | {"ratio": r.ratio} for r in rows], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
