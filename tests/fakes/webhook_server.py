"""A local HTTP server that receives Slack and generic webhook JSON posts.

It can be told to answer the next N posts with an error status, and can be stopped and
started again on the same port (so a test sees "connection refused, then accepted").
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes.smtp_server import free_port


@dataclass
class Post:
    path: str
    body: dict[str, Any]
    content_type: str


@dataclass
class WebhookServer:
    port: int = field(default_factory=free_port)
    posts: list[Post] = field(default_factory=list)
    fail_next: int = 0
    fail_status: int = 503
    attempts: int = 0
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> WebhookServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                owner.attempts += 1
                if owner.fail_next > 0:
                    owner.fail_next -= 1
                    self.send_response(owner.fail_status)
                    self.end_headers()
                    return
                owner.posts.append(
                    Post(self.path, json.loads(raw), self.headers.get("Content-Type", ""))
                )
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
