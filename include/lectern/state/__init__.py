"""Per-video state: models, migrations and the functions that move a video between states."""

from lectern.state.db import migrate, session_scope
from lectern.state.models import FAILED, PENDING, REJECTED, RUNNING, SUCCEEDED

__all__ = ["migrate", "session_scope", "PENDING", "RUNNING", "SUCCEEDED", "REJECTED", "FAILED"]
