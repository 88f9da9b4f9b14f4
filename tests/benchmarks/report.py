"""The docs' performance page from a pytest-benchmark run: one table, every figure measured.

    make bench      (runs the benchmarks with --benchmark-json=build/bench.json, then this)
    python -m tests.benchmarks.report build/bench.json docs/performance.md

Each benchmark records its figures (ratios against a reference measured in the same run, and the
raw timings) in ``extra_info``; this writes them, with the machine, the commit and the command,
into a markdown page. Nothing in the page is typed by hand.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

COMMAND = "make bench"


def figure(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def page(run: dict[str, Any]) -> str:
    machine, commit = run.get("machine_info", {}), run.get("commit_info", {})
    cpu = machine.get("cpu", {})
    lines = [
        "# Performance",
        "",
        f"Made by `{COMMAND}` (`tests/benchmarks/`; this page: `tests/benchmarks/report.py`) on "
        f"{cpu.get('brand_raw', machine.get('processor', 'an unnamed CPU'))}, {cpu.get('count', '?')} logical cores, "
        f"Python {machine.get('python_version', '?')}, commit {commit.get('id', 'unknown')[:12]}"
        f"{' (dirty)' if commit.get('dirty') else ''}, {run.get('datetime', '')[:19]}. Ratios compare with a "
        "reference measured in the same run; each benchmark checks its targets (``tests/benchmarks/targets.py``) "
        "and fails on a missed one, after recording it here.",
        "",
        "| benchmark | targets | figures | median time of one round |",
        "|---|---|---|---|",
    ]
    missed = 0
    for bench in run.get("benchmarks", []):
        info = dict(bench.get("extra_info", {}))
        targets = info.pop("targets", [])
        missed += sum("NOT met" in target for target in targets)
        figures = ", ".join(f"{key} {figure(value)}" for key, value in info.items())
        median = bench.get("stats", {}).get("median")
        timing = f"{median * 1e3:,.3g} ms" if isinstance(median, float) else "-"
        lines.append(f"| `{bench['name']}` | {'<br>'.join(targets) or '-'} | {figures or '-'} | {timing} |")
    lines += ["", f"Targets missed in this run: {missed}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m tests.benchmarks.report BENCH_JSON OUT_MD", file=sys.stderr)
        return 2
    source, out = Path(args[0]), Path(args[1])
    try:
        run = json.loads(source.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        print(f"report: cannot read {source}: {exc}", file=sys.stderr)
        return 2
    out.write_text(page(run))
    print(f"wrote {out} ({len(run.get('benchmarks', []))} benchmarks)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
