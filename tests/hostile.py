"""A hostile App Services stand-in on loopback (no tests here): it answers slowly, hugely,
compressed past reason, nested past reason or with strings no page can hold.

Each test says what to answer (`answer(part, Answer)`; the first rule whose `part` is in
"METHOD /path" wins) and reads back what the server did: how many requests it got and how
many body bytes it managed to write. Every loop is bounded in count and time.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import threading
import time
import zlib
from dataclasses import dataclass

MB = 1024 * 1024


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    content_encoding: str = ""
    declare_length: bool = True
    # Body bytes sent one at a time, `interval` seconds apart, at most `trickle` of them.
    trickle: int = 0
    trickle_headers: bool = False
    interval: float = 1.0
    # Zeros streamed after `body` in 64 KB writes, never held whole (no Content-Length).
    stream_zeros: int = 0


def json_answer(value, **kwargs) -> Answer:
    return Answer(body=json.dumps(value).encode(), **kwargs)


@functools.cache
def gzip_bomb(inflated: int = 300 * MB) -> bytes:
    """About 300 KB of gzip that inflates to `inflated` bytes of zeros (made once per run)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    zeros = bytes(MB)
    parts = [packer.compress(zeros) for _ in range(inflated // MB)]
    parts.append(packer.flush())
    return b"".join(parts)


class HostileUpstream:
    def __init__(self) -> None:
        self.rules: list[tuple[str, Answer]] = []
        self.requests: list[str] = []
        self.body_bytes_written = 0
        self._lock = threading.Lock()
        upstream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(min(length, MB))
                with upstream._lock:
                    upstream.requests.append(f"{self.command} {self.path}")
                answer = upstream.answer_for(f"{self.command} {self.path}")
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    upstream.send(self, answer)  # a client that hangs up does what it should

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, *args) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    def start(self) -> HostileUpstream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, part: str, answer: Answer) -> None:
        self.rules.append((part, answer))

    def answer_for(self, request_line: str) -> Answer:
        for part, answer in self.rules:
            if part in request_line:
                return answer
        return Answer(status=404, body=b'{"error": "no rule", "error_code": "NotFound"}')

    def _write(self, handler, data: bytes, *, body: bool) -> None:
        handler.wfile.write(data)
        if body:
            with self._lock:
                self.body_bytes_written += len(data)

    def send(self, handler, answer: Answer) -> None:
        head = [f"HTTP/1.0 {answer.status} Hostile", f"Content-Type: {answer.content_type}"]
        if answer.content_encoding:
            head.append(f"Content-Encoding: {answer.content_encoding}")
        if answer.declare_length and not answer.stream_zeros:
            head.append(f"Content-Length: {len(answer.body) + answer.trickle}")
        head_bytes = ("\r\n".join(head) + "\r\n\r\n").encode()
        if answer.trickle_headers:
            for byte in head_bytes[: answer.trickle]:  # never the whole head
                self._write(handler, bytes([byte]), body=False)
                time.sleep(answer.interval)
            return
        self._write(handler, head_bytes, body=False)
        self._write(handler, answer.body, body=True)
        for _ in range(answer.trickle):
            time.sleep(answer.interval)
            self._write(handler, b" ", body=True)
        chunk = bytes(64 * 1024)
        for _ in range(answer.stream_zeros // len(chunk)):
            self._write(handler, chunk, body=True)
