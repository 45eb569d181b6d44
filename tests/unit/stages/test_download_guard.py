"""The download SSRF guard: which URLs are refused before yt-dlp starts, and connections refused while it runs
(a redirect to a private address), with real yt-dlp downloads from loopback servers."""

import http.server

import pytest

from lectern.config import Settings
from lectern.errors import BlockedURL
from lectern.stages import download
from lectern.urls import check_url, parse_networks
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
