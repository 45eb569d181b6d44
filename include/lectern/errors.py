"""Failure classes. A stage raises one of these; the runner records its class and whether to retry."""

import errno


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


# botocore/boto3/SQLAlchemy failures that say the server or the connection to it is away, not that the request is
# wrong: an outage that passes. A bug in our code, or a request the server refuses for good, is not among them.
TRANSIENT_CLASSES = frozenset({
    "EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError",
    "S3UploadFailedError", "OperationalError", "InterfaceError",
})
# S3 error codes of an overloaded or restarting server (it answers, but not now).
TRANSIENT_S3_CODES = frozenset({"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling",
                                "RequestTimeTooSkewed"})
# A full disk or quota passes once space is freed; the video's work is not at fault.
TRANSIENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def _s3_server_error(exc: BaseException) -> bool:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return status >= 500 or status == 429 or response.get("Error", {}).get("Code") in TRANSIENT_S3_CODES


def classify(exc: BaseException) -> tuple[str, bool]:
    """(error class, transient?) of any exception raised while running a stage."""
    if isinstance(exc, StageError):
        return exc.error_class, exc.transient
    name = type(exc).__name__
    if isinstance(exc, (ConnectionError, TimeoutError)) or name in TRANSIENT_CLASSES:
        return name, True
    if isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNOS:
        return name, True
    if _s3_server_error(exc):  # botocore ClientError (and its modelled subclasses)
        return name, True
    return name, False
