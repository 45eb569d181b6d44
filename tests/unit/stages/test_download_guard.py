"""The download SSRF guard: which URLs are refused before yt-dlp starts, and connections refused while it runs
(a redirect to a private address), with real yt-dlp downloads from loopback servers."""

import http.server

import pytest

from lectern.config import Settings, parse_networks
from lectern.errors import BlockedURL
from lectern.stages.download import run as download
from lectern.stages.download.urls import check_url
from tests.conftest import http_server
from tests.unit.stages.conftest import record


@pytest.mark.parametrize("url, why", [
    ("file:///etc/passwd", "file:// URLs"),
    ("ftp://example.org/video.mp4", "only http and https"),
    ("http:///video.mp4", "no host"),
    ("http://127.0.0.1:8000/v.mp4", "loopback"),
    ("http://localhost/v.mp4", "loopback"),
    ("http://10.1.2.3/v.mp4", "private"),
    ("http://192.168.1.10/v.mp4", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),  # cloud metadata service
    ("http://[::1]/v.mp4", "loopback"),
    ("http://[::ffff:127.0.0.1]/v.mp4", "loopback"),  # IPv4-mapped
    ("http://0.0.0.0/v.mp4", "unspecified"),
    ("http://100.100.100.200/latest/meta-data/", "non-public"),  # shared address space: a cloud metadata service
    ("http://100.64.0.1/v.mp4", "non-public"),
])
def test_refused_before_downloading(url, why):
    with pytest.raises(BlockedURL, match=why):
        check_url(url)


def test_public_addresses_and_allowed_networks_pass():
    check_url("http://93.184.215.14/video.mp4")  # a public address literal: nothing to resolve
    check_url("http://127.0.0.1:8000/v.mp4", parse_networks("127.0.0.0/8"))
    check_url("http://10.1.2.3/v.mp4", parse_networks("10.0.0.0/8, 192.168.0.0/16"))
    check_url("file:///data/v.mp4", allow_file=True)
    with pytest.raises(BlockedURL, match="private"):
        check_url("http://10.1.2.3/v.mp4", parse_networks("127.0.0.0/8"))


class _Redirect(http.server.BaseHTTPRequestHandler):
    target = ""

    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(302)
        self.send_header("Location", self.target)
        self.end_headers()

    do_HEAD = do_GET  # noqa: N815

    def log_message(self, *args):
        pass


@pytest.fixture
def redirect_to_corpus(corpus_server):
    """A server on 127.0.0.2 that redirects every request to the corpus server on 127.0.0.1."""
    handler = type("Redirect", (_Redirect,), {"target": f"{corpus_server.base_url}/photosynthesis.mp4"})
    with http_server(handler, host="127.0.0.2") as url:
        yield f"{url}/video.mp4"


def guarded_settings(settings: Settings, networks: str) -> Settings:
    from dataclasses import replace

    return replace(settings, download_allow_networks=parse_networks(networks))


def test_a_redirect_to_a_refused_address_fails_for_good(redirect_to_corpus, store, settings):
    # 127.0.0.2 (the redirector) is allowed, 127.0.0.1 (where it redirects) is not: yt-dlp's connection there is
    # refused at connect time, and the failure is permanent.
    with pytest.raises(BlockedURL, match="blocked a connection to 127.0.0.1"):
        download.run(record("photosynthesis", redirect_to_corpus), store, guarded_settings(settings, "127.0.0.2/32"))
    assert not store.exists("videos/photosynthesis/source.mp4")
    # the same redirect with both allowed downloads the video: the guard, not the redirect, refused it
    result = download.run(record("photosynthesis", redirect_to_corpus), store,
                          guarded_settings(settings, "127.0.0.1/32,127.0.0.2/32"))
    assert result.status == "succeeded"


def test_the_download_stage_refuses_a_private_url_without_connecting(store, settings):
    with pytest.raises(BlockedURL, match="link-local"):
        download.run(record("meta", "http://169.254.169.254/latest/meta-data/iam"), store,
                     guarded_settings(settings, ""))


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers anything with a few bytes and keeps the paths asked for."""

    hits: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server's name
        self.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "16")
        self.end_headers()
        self.wfile.write(b"\0" * 16)

    def log_message(self, *args):
        pass


class _Playlist(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.apple.mpegurl")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def test_an_hls_stream_is_not_handed_to_ffmpeg_outside_the_guard(store, settings):
    """An HLS playlist on an allowed address whose key and segment are on a refused one. yt-dlp hands a
    SAMPLE-AES stream to an ffmpeg subprocess, which the in-process connection guard does not reach: nothing may be
    fetched from the refused address, and the video fails for good as blocked."""
    recorder = type("Recorder", (_Recorder,), {"hits": []})
    with http_server(recorder, host="127.0.0.2") as refused:
        playlist = (f'#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n'
                    f'#EXT-X-KEY:METHOD=SAMPLE-AES,URI="{refused}/key"\n#EXTINF:10.0,\n{refused}/segment.ts\n'
                    "#EXT-X-ENDLIST\n").encode()
        with http_server(type("Playlist", (_Playlist,), {"body": playlist}), host="127.0.0.1") as allowed:
            with pytest.raises(BlockedURL, match="m3u8.*external program"):
                download.run(record("hls", f"{allowed}/video.m3u8"), store, guarded_settings(settings, "127.0.0.1/32"))
    assert recorder.hits == []
    assert not store.list("videos/hls/")
