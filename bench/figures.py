"""The measurements every benchmark run adds to bench/results/measurements.csv (bench/run.py appends its summary
rows), as the table docs/performance.md shows: per figure, the latest value with its date and machine, and the
earlier ones. A test keeps that table current.

    .venv/bin/python bench/figures.py   # the table, to paste between the markers in docs/performance.md
"""

from __future__ import annotations

import csv
import datetime
from pathlib import Path

MEASUREMENTS = Path(__file__).resolve().parent / "results" / "measurements.csv"
COLUMNS = ("date", "machine", "figure", "measured", "target", "note")


def read(path: Path = MEASUREMENTS) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def record(rows: list[tuple[str, str, str]], machine: str, path: Path = MEASUREMENTS) -> None:
    """Append (figure, measured, target) rows measured today on `machine`."""
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    with open(path, "a", newline="") as handle:
        writer = csv.writer(handle)
        for figure, measured, target in rows:
            writer.writerow([today, machine, figure, measured, target, ""])


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(rows: list[dict[str, str]]) -> str:
    by_figure: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_figure.setdefault(row["figure"], []).append(row)
    lines = ["| figure | latest (date, machine) | target | earlier |", "| --- | --- | --- | --- |"]
    for figure, runs in by_figure.items():
        runs = sorted(runs, key=lambda r: r["date"])  # stable: rows of one day keep their order
        latest = runs[-1]
        note = f"; {latest['note']}" if latest["note"] else ""
        earlier = "; ".join(f"{r['measured']} ({r['date']}{', ' + r['note'] if r['note'] else ''})" for r in runs[:-1])
        lines.append(f"| {_cell(figure)} | {_cell(latest['measured'])} ({latest['date']}, {_cell(latest['machine'])}"
                     f"{_cell(note)}) | {_cell(latest['target'])} | {_cell(earlier)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(read()))
