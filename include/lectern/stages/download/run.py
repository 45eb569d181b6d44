"""The download stage's work: run(video, store, settings) -> StageResult (what it does: its package's docstring)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

from lectern.config import Settings
from lectern.errors import BlockedURL, CorruptMedia, DownloadFailed, VideoUnavailable
from lectern.pipeline import artifact_key
from lectern.stage_types import StageResult, VideoRecord
from lectern.stages.download import media
from lectern.stages.download.prefilter import duration_reason, height_reason, metadata_rejection
from lectern.stages.download.urls import (
    BLOCKED_MARK,
    PAGE_MARK,
    capped_pages,
    check_url,
    fetch_bytes,
    guarded_connections,
    inside,
)
from lectern.store import Store, scratch_dir

# yt-dlp's messages for a rate limit: transient, though YouTube's begins like a removed video's ("Video unavailable.
# This content isn't available, try again later.").
RATE_LIMITED = re.compile(r"try again later|rate.?limit|too many requests|HTTP Error 429", re.IGNORECASE)
# yt-dlp's messages for videos that will never come back.
GONE = re.compile(r"HTTP Error (404|410)|Private video|Video unavailable|removed|account .*terminated|Unsupported URL",
                  re.IGNORECASE)


def download_error(message: str) -> DownloadFailed | VideoUnavailable:
    """yt-dlp's failure message as Lectern's error: gone for good (VideoUnavailable, permanent) or not
    (DownloadFailed, retried), a rate limit never gone for good."""
    if GONE.search(message) and not RATE_LIMITED.search(message):
        return VideoUnavailable(message)
    return DownloadFailed(message)


class OverSizeCap(Exception):
    """The file is larger than LECTERN_MAX_DOWNLOAD_MB: a rejection (by the size filter), not a failure."""


def size_cap(settings: Settings) -> tuple[int, OverSizeCap]:
    """LECTERN_MAX_DOWNLOAD_MB in bytes, and what a file over it raises: one rule for downloads and local files."""
    return int(settings.max_download_mb * 1024 * 1024), OverSizeCap(f"larger than {settings.max_download_mb:g} MB")


class _Messages:
    """yt-dlp's logger: keeps what it says (it reports a skipped oversize file without raising)."""

    def __init__(self):
        self.lines: list[str] = []

    def debug(self, message: str) -> None:
        self.lines.append(message)

    info = warning = error = debug


def _formats_fetched_here(select, allow_file: bool, refused: set[str]):
    """yt-dlp's format selection (`select`, from LECTERN_DOWNLOAD_FORMAT) among the formats yt-dlp fetches itself
    over plain http(s), in this thread, where the connection guard applies. HLS, DASH and the rest are fetched by
    fragment downloaders that hand some streams (SAMPLE-AES keys, say) to an ffmpeg subprocess, which would
    connect anywhere; their protocols go into `refused`."""
    plain = ("http", "https", "file") if allow_file else ("http", "https")

    def selector(ctx):
        formats = [f for f in ctx["formats"] if f.get("protocol") in plain]
        refused.update(f.get("protocol") or "unknown" for f in ctx["formats"] if f.get("protocol") not in plain)
        return select({**ctx, "formats": formats})

    return selector


def fetch(url: str, directory: Path, settings: Settings) -> Path:
    """Download one video with yt-dlp into `directory`; returns the file. Only public addresses (and the allowed
    networks) are fetched from, redirects included."""
    import yt_dlp

    check_url(url, settings.download_allow_networks, settings.allow_file_urls)
    cap, over = size_cap(settings)
    messages = _Messages()
    options = {
        "logger": messages,
        "max_filesize": cap,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "format": settings.download_format,
        "merge_output_format": "mp4",
        "outtmpl": str(directory / "source.%(ext)s"),
        "enable_file_urls": settings.allow_file_urls,
        "socket_timeout": 60,
        "retries": 3,
        "noplaylist": True,
        "concurrent_fragment_downloads": 1,  # in this thread, where the connection guard applies
    }
    refused: set[str] = set()
    try:
        # The user's format spec, compiled by a YoutubeDL with the same options, applied to plain formats only.
        select = yt_dlp.YoutubeDL(options).build_format_selector(settings.download_format)
        options["format"] = _formats_fetched_here(select, settings.allow_file_urls, refused)
        with (guarded_connections(settings.download_allow_networks),
              capped_pages(settings.max_page_mb, settings.page_timeout_s), yt_dlp.YoutubeDL(options) as ydl):
            ydl.download([url])
    except yt_dlp.utils.DownloadError as exc:
        message = str(exc).replace("ERROR: ", "")
        if BLOCKED_MARK in message:
            raise BlockedURL(message) from exc
        if PAGE_MARK in message and "larger than" in message:
            raise OverSizeCap(message.split(f"{PAGE_MARK}: ", 1)[1]) from exc
        if PAGE_MARK in message:
            raise DownloadFailed(message) from exc
        if refused and "Requested format is not available" in message:
            raise BlockedURL(f"{url}: only {', '.join(sorted(refused))} formats, which an external program (ffmpeg) "
                             "would fetch outside the SSRF guard; Lectern downloads plain http(s) formats") from exc
        if "Did not get any data blocks" in message:
            raise CorruptMedia(f"{url}: the server sent an empty file") from exc
        raise download_error(message) from exc
    files = [p for p in directory.iterdir() if p.name.startswith("source.") and not p.name.endswith(".part")]
    oversize = any("larger than max-filesize" in line for line in messages.lines)
    if oversize or (files and files[0].stat().st_size > cap):
        raise over
    if not files:
        raise DownloadFailed(f"yt-dlp wrote no file for {url}")
    return files[0]


COVER_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
# A cover larger than this is not kept: a few KB of PNG can claim 20000 x 20000 pixels (a decompression bomb).
MAX_COVER_PIXELS = 40_000_000


class NoCover(Exception):
    """A cover image that cannot be had (blocked, unreachable, too large, not an image): why, for the metrics."""


def fetch_cover(url: str, settings: Settings) -> tuple[bytes, str]:
    """A cover image's bytes and file extension, fetched only from where a download may connect (the SSRF guard,
    redirects included), at most LECTERN_MAX_COVER_MB and MAX_COVER_PIXELS, and checked as an image."""
    import io
    import urllib.error

    from PIL import Image, UnidentifiedImageError

    cap = int(settings.max_cover_mb * 1024 * 1024)
    try:
        data = fetch_bytes(url, settings.download_allow_networks, settings.allow_file_urls, timeout=60, max_bytes=cap)
    except (BlockedURL, DownloadFailed) as exc:
        raise NoCover(str(exc)) from None
    except urllib.error.HTTPError as exc:
        raise NoCover(f"{url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise NoCover(f"{url}: {exc}") from None
    if len(data) > cap:
        raise NoCover(f"{url}: larger than {settings.max_cover_mb:g} MB")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > MAX_COVER_PIXELS:
                raise NoCover(f"{url}: {width} x {height} pixels, more than {MAX_COVER_PIXELS:,}")
            image.verify()
            kind = image.format
    except Image.DecompressionBombError as exc:  # raised by open itself, past twice PIL's own pixel limit
        raise NoCover(f"{url}: too many pixels ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise NoCover(f"{url}: not an image ({exc})") from None
    if kind not in COVER_FORMATS:
        raise NoCover(f"{url}: a {kind} image, not one of {', '.join(COVER_FORMATS)}")
    return data, COVER_FORMATS[kind]


def is_local(video: VideoRecord) -> bool:
    """Whether the video is a local file read where it is (found in a folder its subject names:
    lectern/local_files.py)."""
    return video.url.startswith("file:") and bool(video.local_roots)


def local_source(video: VideoRecord, settings: Settings) -> Path:
    """The video's local file: BlockedURL when it lies outside every folder its subject names, VideoUnavailable
    when it is gone, OverSizeCap when it is larger than LECTERN_MAX_DOWNLOAD_MB (as a download would be: its size
    as the file system gives it, so a sparse file of terabytes is refused before a byte is copied)."""
    path = Path(unquote(urlsplit(video.url).path, errors="surrogateescape"))  # the file name's own bytes
    if not any(inside(path, root) for root in video.local_roots):
        raise BlockedURL(f"{path}: outside the folders its subject names ({', '.join(video.local_roots)})")
    if not path.is_file():
        raise VideoUnavailable(f"{path}: no such file")
    cap, over = size_cap(settings)
    if path.stat().st_size > cap:
        raise over
    return path


def run(video: VideoRecord, store: Store, settings: Settings) -> StageResult:
    reason = metadata_rejection(video, settings)
    if reason:  # decided on search metadata: nothing is downloaded
        return StageResult.rejected(f"metadata filter: {reason}", {"duration_s": video.duration_s})
    started = time.monotonic()
    with scratch_dir(video.id, "download") as tmp:
        try:
            path = local_source(video, settings) if is_local(video) else fetch(video.url, tmp, settings)
        except OverSizeCap as exc:
            return StageResult.rejected(f"size filter: {exc}", {"duration_s": video.duration_s})
        seconds = time.monotonic() - started
        info = media.probe(path)
        metrics = {**info, "download_seconds": round(seconds, 3)}
        if not info["has_video"]:
            return StageResult.rejected("no video stream", metrics, duration_s=info["duration_s"])
        if not info["has_audio"]:
            return StageResult.rejected("no audio stream (nothing to transcribe)", metrics,
                                        duration_s=info["duration_s"])
        reason = duration_reason(info["duration_s"], settings) or height_reason(info["height"], settings)
        if reason:
            return StageResult.rejected(f"probe filter: {reason}", metrics, duration_s=info["duration_s"])
        artifacts = {"source": store.put_file(artifact_key("download", "source", video.id), path),
                     "probe": store.put_json(artifact_key("download", "probe", video.id), info)}
    if video.cover_url:
        try:
            data, extension = fetch_cover(video.cover_url, settings)
            artifacts["cover"] = store.put_bytes(artifact_key("download", "cover", video.id, extension=extension), data)
            metrics["cover_bytes"] = len(data)
        except NoCover as exc:
            metrics["cover_error"] = str(exc)
    return StageResult.succeeded(artifacts, metrics, duration_s=info["duration_s"])
