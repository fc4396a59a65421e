"""A local HTTP server that plays a package index and its file host, for index and fetch tests.

Routes answer with scripted replies in order (the last one repeats), so a test can make a server
fail and then recover, cut a body short, or lie about sizes, and count the requests it got.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Send only this many bytes of the body (after a Content-Length for all of it), then hang up.
    cut_after: int | None = None
    # Omit Content-Length: the body then ends when the connection closes.
    send_length: bool = True


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


class LocalServer:
    """An HTTP server on 127.0.0.1 with a free port, serving scripted replies."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        # Asked for a path no route scripts (None: 404), e.g. to pass it on to a real index.
        self.fallback: Callable[[str], Reply | None] | None = None
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._httpd = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def base(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def route(self, path: str, *replies: Reply) -> None:
        with self._lock:
            self.routes[path] = list(replies)

    def hits(self, path: str) -> int:
        with self._lock:
            return sum(1 for s in self.seen if s.path == path)

    def next_reply(self, path: str, headers: dict[str, str]) -> Reply:
        with self._lock:
            self.seen.append(Seen(path, headers))
            replies = self.routes.get(path)
            fallback = self.fallback
            if replies:
                return replies.pop(0) if len(replies) > 1 else replies[0]
        found = fallback(path) if fallback is not None else None
        return found if found is not None else Reply(status=404, body=b"not found")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that hang up mid-body (tests of aborted downloads) are expected here.
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


def _handler_for(server: LocalServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            reply = server.next_reply(path, dict(self.headers.items()))
            self.send_response(reply.status)
            for key, value in reply.headers.items():
                self.send_header(key, value)
            if reply.send_length:
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            body = reply.body if reply.cut_after is None else reply.body[: reply.cut_after]
            self.wfile.write(body)
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output quiet

    return Handler


@contextmanager
def local_server() -> Iterator[LocalServer]:
    server = LocalServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_entry(
    server: LocalServer, filename: str, content: bytes, **extra: object
) -> dict[str, object]:
    """A PEP 691 file entry for ``content``, served by ``server`` at /files/<filename>."""
    server.route(f"/files/{filename}", Reply(body=content))
    entry: dict[str, object] = {
        "filename": filename,
        "url": server.url(f"/files/{filename}"),
        "hashes": {"sha256": sha256(content)},
        "requires-python": ">=3.8",
        "size": len(content),
        "upload-time": "2024-02-05T23:48:01.194769Z",
        "yanked": False,
    }
    entry.update(extra)
    return entry


def project_page(name: str, files: list[dict[str, object]], versions: list[str] | None) -> bytes:
    page: dict[str, object] = {"meta": {"api-version": "1.1", "_last-serial": "1"}, "name": name}
    if versions is not None:
        page["versions"] = versions
    page["files"] = files
    return json.dumps(page).encode()


def json_reply(body: bytes, status: int = 200) -> Reply:
    return Reply(status=status, body=body, headers={"Content-Type": SIMPLE_JSON})


def from_the_real_index(path: str) -> Reply | None:
    """A project page of the real index, for a local index that serves some projects itself
    (a LocalServer's fallback)."""
    import requests

    if not path.startswith("/simple/"):
        return None
    answer = requests.get(
        f"https://pypi.org/simple/{path.removeprefix('/simple/')}",
        headers={"Accept": SIMPLE_JSON},
        timeout=30,
    )
    return json_reply(answer.content) if answer.status_code == 200 else None
