"""JSON arrays as Lectern writes them, one value a line, so that a file of any length is written and read a value
at a time (a release's video_meta_data.json, an export's arrays)::

    [
    {"id": ...},
    {"id": ...}
    ]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Iterable, Iterator


def write_array(handle: IO[str], values: Iterable) -> int:
    """The values as one JSON array, one a line; returns how many."""
    count = 0
    handle.write("[")
    for value in values:
        handle.write(("\n" if not count else ",\n") + json.dumps(value, ensure_ascii=False))
        count += 1
    handle.write("\n]\n")
    return count


def read_array(path: Path) -> Iterator:
    """The values of a JSON array file, one at a time where it is laid out as write_array lays it out (a value a
    line: json.dumps writes no newline inside one), else read whole."""
    with open(path, encoding="utf-8") as handle:
        if handle.readline().strip() != "[":
            handle.seek(0)
            yield from json.load(handle)
            return
        for line in handle:
            line = line.strip().removesuffix(",")
            if line and line != "]":
                yield json.loads(line)
