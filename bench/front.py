"""The production front of keyadmin, and the slow clients it is there for.

`Nginx` runs Debian's nginx as the front that docs/deploy.md describes: the committed
deploy/nginx/keyadmin-front.conf, included verbatim in a server block of a configuration written
into a directory of the caller's, listening on a free loopback port and proxying to one gunicorn
on loopback. It runs as whoever starts it: pid file, logs and temporary files stay in that
directory, nothing under /var or /etc is read or written.

`SlowClients` opens connections that send a request's headers (or its body) a byte at a time
and never finish them: the slowloris attack, which ties up a server that gives each connection
a thread until its request is whole.

Everything listens on and talks to 127.0.0.1 (or another loopback address) only. This module
needs only keyadmin's runtime dependencies (no pytest).
"""

from __future__ import annotations

import os
import re
import select
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import ROOT, stop
from keyadmin.emulator.process import free_port

FRONT_CONF = ROOT / "deploy" / "nginx" / "keyadmin-front.conf"

# nginx's own files stay in the working directory; `{http}` is the inside of the http block.
_MAIN_CONF = """\
daemon off;
master_process on;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log info;
{user}
events {{
    worker_connections 1024;
}}
http {{
    access_log {workdir}/access.log;
    client_body_temp_path {workdir}/client_body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
{http}
}}
"""

# The lines the site file of docs/deploy.md section 6 has around the committed file, on loopback.
_LOOPBACK_SITE = """\
    limit_conn_zone $binary_remote_addr zone=keyadmin_addr:10m;
    upstream keyadmin {{
        server {upstream};
    }}
    server {{
        listen 127.0.0.1:{port};
        server_name 127.0.0.1;
        include {front};
    }}
"""


def main_conf(workdir: Path, http: str) -> str:
    # As root, nginx would switch its worker to `nobody`, which cannot enter a private temporary
    # directory; as anyone else it stays who it is and ignores `user`.
    user = "user root;" if os.geteuid() == 0 else ""
    return _MAIN_CONF.format(workdir=workdir, user=user, http=http)


def check_conf(workdir: Path, http: str) -> subprocess.CompletedProcess:
    """`nginx -t` on a configuration whose http block holds `http`, files in `workdir`."""
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed (apt-get install nginx)")
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "nginx-check.conf"
    conf.write_text(main_conf(workdir, http))
    return subprocess.run(  # noqa: S603 - fixed arguments
        [binary, "-t", "-q", "-p", str(workdir), "-c", str(conf), "-e", "error.log"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def nginx_binary() -> str | None:
    """Debian's nginx lives in /usr/sbin, which is not on a normal user's PATH."""
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def front_setting(name: str) -> str:
    """The value of one directive in the committed front configuration (it must be there once)."""
    values = re.findall(rf"^\s*{name}\s+([^;]+);", FRONT_CONF.read_text(), flags=re.MULTILINE)
    if len(values) != 1:
        raise RuntimeError(f"{FRONT_CONF.name} sets {name} {len(values)} times, not once")
    return values[0].strip()


def seconds_of(value: str) -> float:
    """An nginx time such as `10s` or `500ms`, in seconds."""
    number, unit = re.fullmatch(r"(\d+)(ms|s|m)?", value).groups()
    return int(number) * {"ms": 0.001, "s": 1, None: 1, "m": 60}[unit]


def wait_for_port(port: int, process: subprocess.Popen, what: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen within {seconds:.0f} s")


@dataclass
class Nginx:
    """nginx with the committed front configuration, in front of `upstream` (host:port)."""

    workdir: Path
    upstream: str
    process: subprocess.Popen | None = None
    url: str = ""

    def start(self) -> Nginx:
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("nginx is not installed (apt-get install nginx)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        conf = self.workdir / "nginx.conf"
        site = _LOOPBACK_SITE.format(upstream=self.upstream, port=port, front=FRONT_CONF)
        conf.write_text(main_conf(self.workdir, site))
        check = check_conf(self.workdir, site)
        if check.returncode != 0:
            raise RuntimeError(f"nginx refused its configuration:\n{check.stderr[-3000:]}")
        # -e: the error log before the configuration is read (else /var/log/nginx/error.log).
        command = [binary, "-p", str(self.workdir), "-c", str(conf), "-e", "error.log"]
        self.process = subprocess.Popen(  # noqa: S603 - fixed arguments
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.url = f"http://127.0.0.1:{port}"
        try:
            wait_for_port(port, self.process, "nginx")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        stop(self.process, seconds=10)

    def error_log(self) -> str:
        try:
            return (self.workdir / "error.log").read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


SLOW_HEADERS = b"GET /slow-client HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


def slow_body(length: int = 4000) -> bytes:
    """A complete request head announcing a body that will then come a byte at a time."""
    return (
        b"POST /slow-client HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\n\r\n" % length
    )


@dataclass
class SlowClient:
    sock: socket.socket
    answer: bytes = b""
    closed_by_server: bool = False


@dataclass
class SlowClients:
    """`count` connections to `port` that send `head` at once, then one more byte each `interval`.

    The bytes after `head` are never the end of the request: the headers (or the announced body)
    stay incomplete for as long as the clients run. `start()` trickles from a background thread
    until `stop()` or `seconds` have passed, whichever comes first. A connection the server
    closes (or answers) is noted, with whatever it answered, and left alone from then on.
    """

    port: int
    count: int
    head: bytes = SLOW_HEADERS
    interval: float = 0.5
    seconds: float = 25
    source: str = "127.0.0.1"
    clients: list[SlowClient] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def open(self) -> SlowClients:
        for _ in range(self.count):
            sock = socket.create_connection(
                ("127.0.0.1", self.port), timeout=5, source_address=(self.source, 0)
            )
            sock.sendall(self.head + b"a")
            sock.setblocking(False)
            self.clients.append(SlowClient(sock))
        return self

    def start(self) -> SlowClients:
        self.open()
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        deadline = time.monotonic() + self.seconds
        while not self._stopping.wait(self.interval) and time.monotonic() < deadline:
            self.trickle()

    def trickle(self) -> None:
        """Note what the server closed or answered, and send one more byte on the others."""
        still_open = [client for client in self.clients if not client.closed_by_server]
        readable = set()
        if still_open:
            readable, _, _ = select.select([client.sock for client in still_open], [], [], 0)
        for client in still_open:
            if client.sock in readable:
                self._read(client)
                continue
            try:
                client.sock.send(b"a")
            except OSError:  # reset, or closed under us: the server let go of it
                client.closed_by_server = True

    @staticmethod
    def _read(client: SlowClient) -> None:
        try:
            data = client.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        client.answer += data
        client.closed_by_server = True  # an answer to an unfinished request, or the end

    def still_open(self) -> int:
        return sum(not client.closed_by_server for client in self.clients)

    def answers(self) -> list[bytes]:
        return [client.answer for client in self.clients if client.answer]

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for client in self.clients:
            client.sock.close()

    def __enter__(self) -> SlowClients:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
