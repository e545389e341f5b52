"""A call's deadline never cuts another call's answer on a connection the pool handed on."""

from __future__ import annotations

import http.server
import socketserver
import threading
import time

import pytest

from keyadmin.appservices import client


class _Answers(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    post_arrived = threading.Event()

    def log_message(self, *args) -> None:
        pass

    def _answer(self) -> None:
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).post_arrived.set()
        time.sleep(0.5)
        self._answer()


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


@pytest.fixture
def origin(settings):
    settings.APPSERVICES_ALLOWED_HOSTS = ["127.0.0.1"]
    server = _Server(("127.0.0.1", 0), _Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_deadline_passing_after_its_answer_does_not_cut_the_next_calls_create(
    origin, monkeypatch
):
    real_exchange = client._exchange
    second: dict = {}

    def create() -> None:
        try:
            second["answer"] = client._call(
                "POST", origin, "/create", route="POST /create", body={"name": "k"}
            )
        except client.AppServicesError as error:
            second["answer"] = type(error).__name__

    def exchange_then_expire(method, url, headers, body, deadline):
        answer = real_exchange(method, url, headers, body, deadline)
        monkeypatch.setattr(client, "_exchange", real_exchange)
        creating = threading.Thread(target=create)
        creating.start()  # takes the connection the first call just gave back to the pool
        assert _Answers.post_arrived.wait(5)
        deadline.expire()  # the first call's deadline passes now, as the watchdog would do it
        creating.join(10)
        return answer

    monkeypatch.setattr(client, "_exchange", exchange_then_expire)

    assert client._call("GET", origin, "/list", route="GET /list", retry=True) == {"ok": True}
    assert second["answer"] == {"ok": True}
