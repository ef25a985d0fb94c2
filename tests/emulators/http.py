"""The loopback JSON server every REST stand-in runs on, so each stand-in is only its API.

A stand-in subclasses `JsonStandIn` and implements `answer(call)`; the server reads the
request, decodes a JSON body (keeping non-JSON bodies, such as an artifact upload, out of
the way), and writes the answer back as JSON with its headers.
"""

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Answer = tuple[int, Any, dict[str, str]]
# An answer of `DROP` closes the connection without a response, as a load balancer or a dying
# server does: the client sees the connection reset mid-request.
DROP: Answer = (-1, None, {})


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str]  # names lowercased: HTTP header names are case-insensitive


def loopback_server(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    """A threaded HTTP server on 127.0.0.1 (an ephemeral port), serving in the background, and its URL.

    Nagle's algorithm is off, as in production HTTP servers: `BaseHTTPRequestHandler` writes the
    headers and the body separately, and with Nagle on the body waits for the client's delayed ACK
    (40 ms on Linux) on every response, which made most of the suite's time.
    """
    handler.disable_nagle_algorithm = True
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    # A short poll interval: `stop()` (shutdown) waits up to one interval for the loop to notice.
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class JsonStandIn(ABC):
    """An HTTP server on 127.0.0.1 (an ephemeral port) answering through `answer`."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._server, self.url = loopback_server(_handler(self))

    def stop(self) -> None:
        self._server.shutdown()

    @abstractmethod
    def answer(self, call: Call) -> Answer:
        """Status, JSON-able body (None for none) and headers for one request."""

    def serving(self, host: str, path: str) -> bool | None:
        """Whether the deployment an inference URL names answers now; None if it is not one.

        The trivial health route behind every recorded endpoint URL: a caller GETs the URL's
        path with its host in the Host header (as `curl --resolve` would), and gets 200 while
        the deployment serves and 503 otherwise. It is not logged as an API request.
        """
        return None


def _handler(stand_in: JsonStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: object) -> None:
            return None

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            url = urlsplit(self.path)
            body: Any = {}
            if raw.strip() and "json" in self.headers.get("Content-Type", ""):
                try:
                    body = json.loads(raw)
                except (UnicodeDecodeError, json.JSONDecodeError):  # an upload, whatever its header says
                    body = {"bytes": len(raw)}
            serving = stand_in.serving(self.headers.get("Host", ""), url.path) if self.command == "GET" else None
            if serving is not None:
                status, answer, headers = (200, {"status": "healthy"}, {}) if serving else (503, {"status": "unavailable"}, {})
            else:
                status, answer, headers = stand_in.answer(
                    Call(self.command, url.path, parse_qs(url.query), body, {k.lower(): v for k, v in self.headers.items()})
                )
                if (status, answer, headers) == DROP:
                    self.close_connection = True
                    return
            data = b"" if answer is None else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":  # a HEAD answer has the headers of the GET and no body
                self.wfile.write(data)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return Handler
