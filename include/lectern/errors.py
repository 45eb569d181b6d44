"""Failure classes. A stage raises one of these; the runner records its class and whether to retry."""


class StageError(Exception):
    """A failure with a name users can act on. Permanent unless a subclass says otherwise."""

    transient = False

    @property
    def error_class(self) -> str:
        return type(self).__name__


class PermanentError(StageError):
    """Retrying will not help (bad input, removed video): the video is tombstoned for this stage."""


class TransientError(StageError):
    """May succeed later (network, rate limit, server unavailable): retried with backoff."""

    transient = True


class CorruptMedia(PermanentError):
    """The file is not a readable video or keyframe image (truncated, random bytes, empty)."""


class VideoUnavailable(PermanentError):
    """The source says the video is gone: 404/410, private, removed."""


class BlockedURL(PermanentError):
    """The URL points where a download may not go: not http(s), or a private, loopback or link-local address."""


class DownloadFailed(TransientError):
    """The download failed in a way that may pass: timeouts, 429, 5xx."""


class MissingInput(PermanentError):
    """An upstream artifact this stage needs is absent from the store."""


def classify(exc: BaseException) -> tuple[str, bool]:
    """(error class, transient?) of any exception raised while running a stage."""
    if isinstance(exc, StageError):
        return exc.error_class, exc.transient
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return type(exc).__name__, True
    name = type(exc).__name__
    # botocore/SQLAlchemy connection trouble is worth a retry; a bug in our code is not.
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "OperationalError"):
        return name, True
    return name, False
