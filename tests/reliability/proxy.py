"""A TCP proxy on loopback in front of a real server (Postgres, the S3 server), which a test can take down -- every
connection cut, new ones refused -- and bring back on the same port: what clients see when that server restarts.
It can also answer each request itself instead (an HTTP error, or hanging up before any answer): what clients see
of an overloaded S3 server or LLM server, or of a load balancer dropping connections."""

from __future__ import annotations

import socket
import threading


class TcpProxy:
    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self._answer: bytes | None = None
        self._hang_up = False
        self.up()

    @classmethod
    def serving(cls, url: str):
        """A proxy in front of the server at `url` (its host and port) for a test, taken down after it."""
        from urllib.parse import urlsplit

        address = urlsplit(url)
        proxy = cls(address.hostname, address.port)
        try:
            yield proxy
        finally:
            proxy.down()

    def answer_http(self, status: int, reason: str, code: str) -> None:
        """From now on answer every HTTP request with this status and an S3 error body naming `code`."""
        self.answer_xml(status, reason, f"<Error><Code>{code}</Code><Message>{reason}</Message></Error>")

    def answer_xml(self, status: int, reason: str, xml: str) -> None:
        """From now on answer every HTTP request with this status and XML body."""
        self.answer(status, reason, "application/xml", f'<?xml version="1.0" encoding="UTF-8"?>{xml}')

    def answer(self, status: int, reason: str, content_type: str, body: str) -> None:
        """From now on answer every HTTP request with this status and body."""
        data = body.encode()
        self._answer = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
                        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n").encode() + data
        self._hang_up = False
        self._cut()

    def hang_up(self) -> None:
        """From now on read each request and close the connection without an answer."""
        self._answer, self._hang_up = None, True
        self._cut()

    def forward(self) -> None:
        """Back to forwarding every connection to the server."""
        self._answer, self._hang_up = None, False

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        """Refuse new connections and cut the live ones."""
        with self._lock:
            listener, self._listener = self._listener, None
            connections, self._connections = self._connections, []
        if listener:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked in the other thread
            except OSError:
                pass
            listener.close()
        self._close(connections)

    def _cut(self) -> None:
        """Cut the forwarded connections, so a client's next request (on a new one) meets the new behaviour."""
        with self._lock:
            connections, self._connections = self._connections, []
        self._close(connections)

    @staticmethod
    def _close(connections: list[socket.socket]) -> None:
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            connection.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # taken down
            if self._answer is not None or self._hang_up:
                threading.Thread(target=self._reply, args=(client, self._answer), daemon=True).start()
                continue
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _reply(client: socket.socket, answer: bytes | None) -> None:
        """Read one request (its headers and any body the client sends before waiting for us), then answer it or
        hang up."""
        try:
            client.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data and (chunk := client.recv(65536)):
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            headers = dict(line.split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line)
            headers = {name.strip().lower(): value.strip().lower() for name, value in headers.items()}
            if headers.get(b"expect") != b"100-continue":
                left = int(headers.get(b"content-length", b"0")) - len(body)
                while left > 0 and (chunk := client.recv(min(left, 65536))):
                    left -= len(chunk)
            if answer is not None:
                client.sendall(answer)
        except OSError:
            pass
        finally:
            client.close()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.close()
                except OSError:
                    pass
