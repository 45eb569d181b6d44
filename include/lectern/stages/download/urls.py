"""Where a download may connect (the SSRF guard): http(s) only, and never to an address that is not public
(private, loopback, link-local, multicast, reserved, the shared 100.64.0.0/10 where cloud metadata services also
live, documentation and benchmarking ranges) unless that network is explicitly allowed
(LECTERN_DOWNLOAD_ALLOW_NETWORKS, for local development: the demo allows 127.0.0.0/8 for its loopback corpus
server).

The URL is checked before yt-dlp starts, and every connection yt-dlp opens while downloading is checked again at
connect time, so a redirect to a private address or a DNS answer that changed in between is refused too."""

from __future__ import annotations

import contextlib
import glob
import ipaddress
import socket
import threading
import time
from pathlib import Path
from typing import Iterator, Sequence
from urllib.parse import urlsplit

from lectern.config import Network
from lectern.errors import BlockedURL, DownloadFailed

BLOCKED_MARK = "Lectern blocked a connection"  # how a refused connect reads inside yt-dlp's error message


def address_refusal(address: str, allowed: Sequence[Network]) -> str | None:
    """What kind of address refuses a connection to `address` ("a loopback address"), or None when it is public
    or in an allowed network."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    elif isinstance(ip, ipaddress.IPv6Address) and (ip.sixtofour or ip.teredo):
        # 6to4 (2002::/16) and Teredo (2001::/32) addresses carry an IPv4 address (Teredo: its server and client)
        # that a relay forwards to: held to the IPv4 rule, whatever Python thinks of the IPv6 address
        kind, embedded = ("6to4", [ip.sixtofour]) if ip.sixtofour else ("Teredo", list(ip.teredo))
        for inner in embedded:
            why = address_refusal(str(inner), allowed)
            if why:
                return f"a {kind} address embedding {inner}, {why}"
    if any(ip in network for network in allowed):
        return None
    # the most specific first: Python counts link-local, loopback and unspecified addresses as private too
    for kind in ("loopback", "link_local", "unspecified", "multicast", "reserved", "private"):
        if getattr(ip, f"is_{kind}"):
            return f"a {kind.replace('_', '-')} address"
    if not ip.is_global:  # Python's is_private leaves out 100.64.0.0/10 (100.100.100.200 is a metadata service)
        return "a non-public address"
    return None


def is_web_url(url: object, allow_file: bool = False) -> bool:
    """An http(s) URL with a host (or, where allowed, a file:// URL): what may be fetched, stored and linked."""
    if not isinstance(url, str):
        return False
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    return (scheme in ("http", "https") and bool(parts.hostname)) or (allow_file and scheme == "file")


def glob_base(pattern: str) -> Path:
    """The folder a glob's matches all lie under: its leading parts without wildcards."""
    parts = Path(pattern).parts
    stop = next((n for n, part in enumerate(parts) if glob.has_magic(part)), len(parts))
    return Path(*parts[:stop]) if stop else Path(".")


def is_glob(root: str) -> bool:
    """A `videos_dir` is a glob when it has wildcards and is not itself a folder (a folder may be named `br[1]`)."""
    return glob.has_magic(root) and not Path(root).is_dir()


def inside(path: Path, root: str) -> bool:
    """Whether a local `path`, with every link and ``..`` resolved, is inside `root`: a folder, or a glob that
    matches it. A glob is held to a folder's rule too: what a match resolves to must lie under the glob's own base
    folder, so neither a linked file nor a linked folder (followed by ``**``) leads out (lectern/local_files.py)."""
    real = path.resolve()
    if not is_glob(root):
        return real.is_relative_to(Path(root).resolve())
    if not real.is_relative_to(glob_base(root).resolve()):
        return False
    return real in {Path(p).resolve() for p in glob.glob(root, recursive=True)}


def check_url(url: str, allowed: Sequence[Network] = (), allow_file: bool = False) -> None:
    """Refuse (BlockedURL, permanent) a URL a download must not fetch; a host that does not resolve is a
    DownloadFailed (transient: DNS may come back)."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        if allow_file:
            return
        raise BlockedURL(f"{url}: file:// URLs are not downloaded (LECTERN_ALLOW_FILE_URLS is for local development)")
    if parts.scheme not in ("http", "https"):
        raise BlockedURL(f"{url}: only http and https URLs are downloaded, not {parts.scheme or 'no scheme'}")
    if not parts.hostname:
        raise BlockedURL(f"{url}: no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except ValueError as exc:  # a port that is not a number
        raise BlockedURL(f"{url}: {exc}") from None
    except socket.gaierror as exc:
        raise DownloadFailed(f"{url}: cannot resolve {parts.hostname}: {exc}") from None
    for info in infos:
        address = info[4][0]
        why = address_refusal(address, allowed)
        if why:
            where = f"{address} is" if address == parts.hostname else f"{parts.hostname} resolves to {address},"
            raise BlockedURL(f"{url}: {where} {why} (allow its network with "
                             "LECTERN_DOWNLOAD_ALLOW_NETWORKS for local development)")


def fetch_bytes(url: str, allowed: Sequence[Network] = (), allow_file: bool = False, timeout: float = 30,
                max_bytes: int | None = None) -> bytes:
    """A small GET through the guard: the URL checked first (BlockedURL, DownloadFailed), every connection checked
    as it opens (a refused one is a URLError naming BLOCKED_MARK); the body, or its first `max_bytes` + 1 bytes, so
    the caller sees that it is larger. urllib's HTTPError and URLError pass to the caller."""
    import urllib.request

    check_url(url, allowed, allow_file)
    with guarded_connections(allowed), urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read() if max_bytes is None else response.read(max_bytes + 1)


_guard = threading.local()
_original_connect = socket.socket.connect
_original_connect_ex = socket.socket.connect_ex


def _checked(sock: socket.socket, address) -> None:
    allowed = getattr(_guard, "allowed", None)
    if allowed is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    why = address_refusal(address[0], allowed)
    if why:
        raise ConnectionRefusedError(f"{BLOCKED_MARK} to {address[0]}, {why}")


def _connect(sock, address):
    _checked(sock, address)
    return _original_connect(sock, address)


def _connect_ex(sock, address):
    _checked(sock, address)
    return _original_connect_ex(sock, address)


@contextlib.contextmanager
def guarded_connections(allowed: Sequence[Network]) -> Iterator[None]:
    """Within the block, this thread's TCP connections to refused addresses fail with BLOCKED_MARK."""
    socket.socket.connect, socket.socket.connect_ex = _connect, _connect_ex  # idempotent: checks are per thread
    _guard.allowed = tuple(allowed)
    try:
        yield
    finally:
        _guard.allowed = None


PAGE_MARK = "Lectern stopped reading a page"  # how a capped page read reads inside yt-dlp's error message
_pages = threading.local()


class _CappedPage:
    """A response yt-dlp reads as a page (not the media file, which its own size cap bounds): at most `max_bytes`
    in all, and no longer than `seconds` from the first read, after which its socket is shut down, so neither a
    huge page nor one sent a byte at a time holds the stage."""

    def __init__(self, response, max_bytes: int, seconds: float):
        self._response, self.max_bytes, self.seconds = response, max_bytes, seconds
        self.total, self.deadline, self.expired = 0, None, False

    def __getattr__(self, name):
        return getattr(self._response, name)

    def _expire(self) -> None:
        self.expired = True
        sock = _socket_of(self._response)
        with contextlib.suppress(OSError):
            if sock is not None:  # a read blocked in recv returns at once; closing the response would not do that
                sock.shutdown(socket.SHUT_RDWR)

    def _refuse(self, why: str):
        from yt_dlp.utils import ExtractorError

        return ExtractorError(f"{PAGE_MARK}: {getattr(self._response, 'url', 'a page')} {why}", expected=True)

    def read(self, amount: int | None = None) -> bytes:
        self.deadline = self.deadline or time.monotonic() + self.seconds
        timer = threading.Timer(max(self.deadline - time.monotonic(), 0), self._expire)
        timer.start()
        chunks, read = [], 0
        try:
            while amount is None or read < amount:
                chunk = self._response.read(1 << 16 if amount is None else min(1 << 16, amount - read))
                if not chunk or self.expired:
                    break
                read += len(chunk)
                self.total += len(chunk)
                if self.total > self.max_bytes:
                    raise self._refuse(f"is larger than {self.max_bytes / 2**20:g} MB (LECTERN_MAX_PAGE_MB)")
                chunks.append(chunk)
        except Exception:
            if not self.expired:
                raise
        finally:
            timer.cancel()
        if self.expired:
            raise self._refuse(f"took longer than {self.seconds:g} s to read (LECTERN_PAGE_TIMEOUT_S)")
        return b"".join(chunks)


def _socket_of(response, depth: int = 6) -> socket.socket | None:
    """The socket under a response of yt-dlp's (through urllib's or requests' wrappers), where one is found."""
    layer = response
    for _ in range(depth):
        if isinstance(layer, socket.socket):
            return layer
        layer = next((getattr(layer, name) for name in ("fp", "_fp", "raw", "_sock", "sock")
                      if getattr(layer, name, None) is not None), None)
        if layer is None:
            return None
    return layer if isinstance(layer, socket.socket) else None


def _install_page_cap() -> None:
    from yt_dlp.extractor.common import InfoExtractor

    original = InfoExtractor._request_webpage
    if getattr(original, "lectern_capped", False):
        return

    def request_webpage(self, *args, **kwargs):
        response, cap = original(self, *args, **kwargs), getattr(_pages, "cap", None)
        return _CappedPage(response, *cap) if cap and response else response

    request_webpage.lectern_capped = True
    InfoExtractor._request_webpage = request_webpage


@contextlib.contextmanager
def capped_pages(max_mb: float, seconds: float) -> Iterator[None]:
    """Within the block, every page yt-dlp reads whole in this thread (a web page, an API answer, a playlist; not
    the media file, which its own size cap bounds) stops at `max_mb` MB or after `seconds`, with PAGE_MARK."""
    _install_page_cap()
    _pages.cap = (int(max_mb * 2**20), seconds)
    try:
        yield
    finally:
        _pages.cap = None
