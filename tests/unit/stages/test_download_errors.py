"""The download error taxonomy with real yt-dlp against a loopback server answering each HTTP status: gone for
good (404, 410) is permanent, the rest (429, 5xx, a dropped connection) is transient; the runner records both with
class and message, retries transient ones with jittered exponential backoff, and stops after the last attempt."""

import http.server

import pytest

from lectern.errors import DownloadFailed, VideoUnavailable
from lectern.stages.download import run as download
from tests.conftest import http_server
from tests.unit.stages.conftest import record


class _Status(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        status = int(self.path.strip("/").split(".")[0])
        if status == 0:  # drop the connection without an answer
            self.connection.close()
            return
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET  # noqa: N815

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def status_server():
    with http_server(_Status) as url:
        yield url


@pytest.mark.parametrize("status, error", [
    (404, VideoUnavailable), (410, VideoUnavailable),
    (429, DownloadFailed), (500, DownloadFailed), (502, DownloadFailed), (503, DownloadFailed),
    (0, DownloadFailed),
])
def test_http_failures_are_classified(status_server, store, settings, status, error):
    with pytest.raises(error) as raised:
        download.run(record("v", f"{status_server}/{status}.mp4"), store, settings)
    assert raised.value.transient is (error is DownloadFailed)
    if status:
        assert str(status) in str(raised.value)  # the message says what the server answered


@pytest.mark.parametrize("message, error", [
    # YouTube's rate limit begins like a removed video's message: it is transient all the same.
    ("[youtube] dQw4w9WgXcQ: Video unavailable. This content isn't available, try again later.", DownloadFailed),
    ("[youtube] dQw4w9WgXcQ: Video unavailable. This video has been removed by the uploader", VideoUnavailable),
    ("[youtube] dQw4w9WgXcQ: Video unavailable", VideoUnavailable),
    ("[youtube] dQw4w9WgXcQ: Private video. Sign in if you've been granted access to this video", VideoUnavailable),
    ("Unable to download webpage: HTTP Error 429: Too Many Requests", DownloadFailed),
])
def test_a_rate_limit_is_never_gone_for_good(message, error):
    assert type(download.download_error(message)) is error
