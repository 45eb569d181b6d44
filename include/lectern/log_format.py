"""How Lectern's log lines are written: readable text, or one JSON object a line (LECTERN_LOG_FORMAT=json) carrying
the video_id, stage and run_id of the stage that wrote it, for a log pipeline to index.

    with stage_context(video_id="v1", stage="ocr", run_id="manual__..."):
        log.info(...)   # {"time": ..., "level": "INFO", "logger": "lectern", "message": ..., "video_id": "v1", ...}
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import json
import logging
from typing import Iterator

from lectern.safe_text import PrintableFormatter, printable

# a new dict each time it is set, never changed in place
_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("lectern_log_context", default=None)


@contextlib.contextmanager
def stage_context(**fields: str | None) -> Iterator[None]:
    """Every record logged inside carries these fields (video_id, stage, run_id)."""
    token = _context.set({**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object a record: time (UTC, ISO 8601), level, logger, message, the stage's context, and the
    traceback where there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc).isoformat(),
                 "level": record.levelname, "logger": record.name, "message": printable(record.getMessage()),
                 **(_context.get() or {})}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    return PrintableFormatter("%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
