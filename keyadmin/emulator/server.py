"""HTTP plumbing for the local App Services server, and `serve()` to run it until a signal.

A stdlib ThreadingHTTPServer speaking HTTP/1.1 with keep-alive, since keyadmin pools its
connections. Every answer goes out in one write with an exact Content-Length, and Nagle is off,
so small answers are not held back by delayed ACKs. Per-request logging only with `verbose`,
and never of headers or bodies: those carry tokens, passwords and key secrets.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from keyadmin.emulator.api import ROUTE_NAMES, ClientApi, match
from keyadmin.emulator.config import EmulatorConfig, check_bind, is_loopback
from keyadmin.emulator.control import PREFIX, ControlApi
from keyadmin.emulator.faults import Fault, Faults, Latency, Stats
from keyadmin.emulator.store import Store
from keyadmin.emulator.wire import ApiError, Request, Response

logger = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
WILDCARD_HOSTS = ("", "0.0.0.0", "::")  # noqa: S104  # nosec B104 - names the wildcard, binds nothing


class BadFraming(Exception):
    """The request body cannot be read; the connection cannot be reused."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a 50-client benchmark must not overflow the listen backlog
    allow_reuse_address = True

    def __init__(self, config: EmulatorConfig) -> None:
        check_bind(config)  # before binding: raises RemoteBindRefused
        self.config = config
        self.address_family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        super().__init__((config.host, config.port), Handler)
        self.store = Store(config.db_path)
        if config.demo_user:
            self.store.ensure_email_user(*config.demo_user)
        self.api = ClientApi(config, self.store)
        self.faults = Faults()
        self.stats = Stats(ROUTE_NAMES)
        self.latency = Latency(config.latency_ms)
        self.control = ControlApi(self.store, self.faults, self.stats, self.latency)
        self.closing = threading.Event()

    def server_bind(self) -> None:
        # HTTPServer.server_bind would also look up the host's FQDN, which can hang on DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.config.host, self.server_address[1]

    @property
    def url(self) -> str:
        host = self.config.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.server_address[1]}"

    def base_url(self, host_header: str | None) -> str:
        # Bound to a wildcard, the server has no one address of its own: answer with the
        # address the client used, so `location` sends it back here.
        if self.config.host in WILDCARD_HOSTS and host_header:
            return f"http://{host_header}"
        return self.url

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hung up (e.g. after its read timeout) is routine, not an error; so is
        # a request cut short by shutdown.
        if self.closing.is_set() or isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        logger.exception("the local App Services server failed on a connection")

    def server_close(self) -> None:
        self.closing.set()
        super().server_close()
        self.store.close()


class Handler(BaseHTTPRequestHandler):
    server: EmulatorServer
    protocol_version = "HTTP/1.1"
    server_version = "LocalAppServices/1.0"
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024  # buffered, so head and body leave in one segment (flushed per request)
    timeout = 300  # idle keep-alive connections end after this

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_GET

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: object) -> None:
        pass  # the stdlib logs every request to stderr; see _log for the opt-in line

    def _dispatch(self) -> None:
        started = time.monotonic()
        try:
            request = self._read_request()
        except BadFraming as exc:
            self.close_connection = True
            self._send(Response.json(exc.status, {"error": str(exc)}))
            return
        if request.path.startswith(PREFIX):
            self._send(self._control(request))
            return
        route, params = match(request.method, request.path)
        self.server.stats.record(route)
        fault = self.server.faults.take(request.method, request.path, route)
        _sleep_ms(self.server.latency.ms)
        response = self._answer(request, route, params, fault)
        if response is None:
            self._drop()
        else:
            self._send(response)
        self._log(request, route, response, started)

    def _control(self, request: Request) -> Response:
        # The controls add users, read key lists and break the server at will: only this
        # machine may use them, even when --allow-remote serves the client API further.
        if not is_loopback(self.client_address[0]):
            return Response.json(
                403, {"error": "the /_emulator/ controls answer only loopback clients"}
            )
        return self.server.control.handle(request)

    def _answer(
        self, request: Request, route: str, params: dict[str, str], fault: Fault | None
    ) -> Response | None:
        """The real answer, or the fault's (None drops the connection)."""
        if fault and fault.action == "delay":
            if fault.when == "before":
                _sleep_ms(fault.delay_ms)
                return self._handle(request, route, params)
            response = self._handle(request, route, params)
            _sleep_ms(fault.delay_ms)
            return response
        if fault and fault.when == "before":
            return fault.response(self._injected_error(request, fault))
        response = self._handle(request, route, params)
        return fault.response(self._injected_error(request, fault)) if fault else response

    def _handle(self, request: Request, route: str, params: dict[str, str]) -> Response:
        try:
            return self.server.api.handle(route, params, request)
        except Exception:
            if not self.server.closing.is_set():
                logger.exception("local App Services server: %s %s failed", request.method, route)
            error = ApiError(500, "InternalServerError", "internal server error")
            return self.server.api.error_response(error, request)

    def _injected_error(self, request: Request, fault: Fault) -> Response:
        error = ApiError(fault.status, "InternalServerError", "injected fault")
        return self.server.api.error_response(error, request)

    def _read_request(self) -> Request:
        parts = urlsplit(self.path)
        return Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers=self.headers,
            body=self._read_body(),
            base_url=self.server.base_url(self.headers.get("Host")),
        )

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise BadFraming(400, "invalid Content-Length") from None
        if length < 0:
            raise BadFraming(400, "invalid Content-Length")
        if length > MAX_BODY:
            raise BadFraming(413, "request body too large")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise BadFraming(400, "invalid chunked body") from None
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return bytes(body)
            if len(body) + size > MAX_BODY:
                raise BadFraming(413, "request body too large")
            body += self.rfile.read(size)
            self.rfile.readline(1024)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        if response.content_type:
            self.send_header("Content-Type", response.content_type)
        # 1xx, 204 and 304 answers have no body and must not announce one.
        if response.status >= 200 and response.status not in (204, 304):
            self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if response.body and self.command != "HEAD" and response.status not in (204, 304):
            self.wfile.write(response.body)

    def _drop(self) -> None:
        """Hang up without a byte of answer, as a crashed proxy would."""
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client may already be gone
            self.connection.shutdown(socket.SHUT_RDWR)

    def _log(self, request: Request, route: str, response: Response | None, started: float) -> None:
        if self.server.config.verbose:
            status = response.status if response else "dropped"
            elapsed = (time.monotonic() - started) * 1000
            # Path only: no query, headers or body, which may carry secrets.
            logger.info(
                "%s %s (%s) -> %s in %.1f ms", request.method, request.path, route, status, elapsed
            )


def _sleep_ms(ms: int) -> None:
    if ms > 0:
        time.sleep(ms / 1000)


def serve(config: EmulatorConfig, announce: Callable[[str], None] = print) -> None:
    """Serve until SIGTERM or SIGINT, then stop cleanly."""
    server = EmulatorServer(config)
    stop = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda *_: stop.set())
        for signum in (signal.SIGTERM, signal.SIGINT)
    }
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    )
    thread.start()
    announce(f"Local App Services server on {server.url} (app id {config.app_id})")
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.shutdown()
        server.server_close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
