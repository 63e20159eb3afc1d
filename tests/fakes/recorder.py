"""Another host on 127.0.0.1 that records every request it gets: where a redirect or a
rendered link would send a browser or a client, to show that nothing (no key) arrives."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorder:
    url: str = ""
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # path, headers


@contextmanager
def recording_server(host_name: str = "127.0.0.1") -> Iterator[Recorder]:
    """Serve until the block ends; `host_name` is how its URL names it ("localhost" is
    another host than "127.0.0.1" for redirect rules)."""
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            recorder.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            body = b'{"data": [], "has_more": false}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    recorder.url = f"http://{host_name}:{httpd.server_address[1]}"
    try:
        yield recorder
    finally:
        httpd.shutdown()
        httpd.server_close()
