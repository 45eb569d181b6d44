"""JSON arrays as Lectern writes them, one value a line, so that a file of any length is written and read a value
at a time (a release's video_meta_data.json, an export's arrays)::

    [
    {"id": ...},
    {"id": ...}
    ]
"""

from __future__ import annotations

import json
from itertools import chain
from pathlib import Path
from typing import IO, Iterable, Iterator


class ArrayWriter:
    """A JSON array written into `handle` a value at a time: `add` each, `close` (or leave the with block) ends it."""

    def __init__(self, handle: IO[str]):
        self.handle, self.count = handle, 0
        handle.write("[")

    def add(self, value) -> None:
        self.handle.write(("\n" if not self.count else ",\n") + json.dumps(value, ensure_ascii=False))
        self.count += 1

    def close(self) -> None:
        self.handle.write("\n]\n")

    def __enter__(self) -> "ArrayWriter":
        return self

    def __exit__(self, kind, *_) -> None:
        if kind is None:
            self.close()


def write_array(handle: IO[str], values: Iterable) -> int:
    """The values as one JSON array, one a line; returns how many."""
    with ArrayWriter(handle) as array:
        for value in values:
            array.add(value)
    return array.count


def read_values(path: Path) -> Iterator:
    """The records of a file an export wrote, one at a time: JSON lines (.jsonl), or a JSON array (read_array)."""
    if path.suffix != ".jsonl":
        yield from read_array(path)
        return
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def read_array(path: Path) -> Iterator:
    """The values of a JSON array file, one at a time where it is laid out as write_array lays it out (a value a
    line: json.dumps writes no newline inside one), else read whole."""
    with open(path, encoding="utf-8") as handle:
        first, second = handle.readline(), handle.readline()
        if first != "[\n" or second[:1].isspace():  # not write_array's layout (an indented one, say)
            handle.seek(0)
            yield from json.load(handle)
            return
        for line in chain([second], handle):
            line = line.strip().removesuffix(",")
            if line and line != "]":
                yield json.loads(line)

