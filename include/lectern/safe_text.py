"""Text from outside (titles, manifests, file names, servers' error messages) made safe where it lands: in the
state DB (Postgres refuses a NUL character in a string), and in front of a person (a terminal obeys the escape
sequences a file name or a server's message may carry)."""

from __future__ import annotations

import logging
import re
from typing import Any

# ANSI/VT escape sequences (CSI ... final byte, OSC ... BEL or ST, and two-byte ESC x), then any other control
# character but tab and newline, C1 controls included.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` without terminal escape sequences and control characters (tab and newline kept)."""
    return _CONTROLS.sub("", _ESCAPES.sub("", text))


def db_safe(value: Any) -> Any:
    """`value` (a string, or a list or dict of them, as JSON holds) without NUL characters, which Postgres refuses
    in text and JSON, and with any lone surrogate replaced: the text every state DB stores."""
    if isinstance(value, str):
        value = value.replace("\x00", "")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates (a file name that is not UTF-8): no DB driver encodes them
            value = value.encode("utf-8", "replace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {db_safe(k): db_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [db_safe(v) for v in value]
    return value


class PrintableFormatter(logging.Formatter):
    """Log lines without the escape sequences and control characters their arguments may carry."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))
