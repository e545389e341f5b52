"""The local App Services server as a child process, and a client for its `/_emulator/` controls.

One way to start it, used by `make run` (rundev), the tests and the bench:

    with EmulatorProcess("demo", tmp / "as.sqlite3", "--verbose").start() as server:
        server.create_user("a@example.com", "pw")

Everything listens on and talks to 127.0.0.1; the controls ignore proxy variables.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _ExitedEarly(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"exited with {code}")
        self.code = code


class Controls:
    """The test controls of a running local server: faults, latency, counters, users, keys."""

    def __init__(self, url: str, app_id: str = "") -> None:
        self.url = url
        self.app_id = app_id
        self._http = requests.Session()
        self._http.trust_env = False  # straight to loopback, whatever proxy a test sets

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        response = self._http.request(method, f"{self.url}/_emulator/{path}", timeout=5, **kwargs)
        response.raise_for_status()
        return response

    def stats(self) -> dict:
        return self._call("GET", "stats").json()

    def request_count(self, route: str | None = None) -> int:
        stats = self.stats()
        return stats["total"] if route is None else stats["by_route"].get(route, 0)

    def reset_stats(self) -> None:
        self._call("POST", "stats/reset")

    def add_fault(self, **spec: Any) -> str:
        return self._call("POST", "faults", json=spec).json()["id"]

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def set_latency(self, ms: int) -> None:
        self._call("POST", "latency", json={"ms": ms})

    def create_user(self, email: str, password: str) -> str:
        body = {"email": email, "password": password}
        return self._call("POST", "users", json=body).json()["user_id"]

    def keys_of(self, email: str) -> list[dict]:
        return self._call("GET", "keys", params={"email": email}).json()["keys"]

    def answers(self) -> bool:
        try:
            self._http.get(f"{self.url}/_emulator/stats", timeout=1)
        except requests.RequestException:
            # A server still starting on a loaded machine may take past the timeout to answer:
            # not yet, rather than an error out of start() that leaves the process running.
            return False
        return True


class EmulatorProcess(Controls):
    """`python -m keyadmin.emulator` on a loopback port (a free one unless `port` is given)."""

    def __init__(
        self,
        app_id: str,
        db_path: Path,
        *extra_args: str,
        port: int = 0,
        stdout: Any = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.db_path = db_path
        self.extra_args = extra_args
        self._port_chosen_here = not port
        self.port = port or free_port()
        self.stdout = stdout
        self.env = env
        self.process: subprocess.Popen | None = None
        super().__init__(f"http://127.0.0.1:{self.port}", app_id)

    # A port free_port found can be taken before the server binds it (another test run's
    # server, or an outgoing connection's local port, on a busy machine): then the server exits
    # at once, and a port chosen here is chosen again, this many times in all.
    PORT_ATTEMPTS = 3

    def start(self, seconds: float = 20) -> EmulatorProcess:
        for attempt in range(1, self.PORT_ATTEMPTS + 1):
            try:
                return self._start(seconds)
            except _ExitedEarly as exited:
                if not self._port_chosen_here or attempt == self.PORT_ATTEMPTS:
                    raise RuntimeError(
                        f"the local App Services server exited with {exited.code}"
                    ) from None
                self.port = free_port()
                self.url = f"http://127.0.0.1:{self.port}"
        raise AssertionError("unreachable")  # pragma: no cover

    def _start(self, seconds: float) -> EmulatorProcess:
        self.process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [
                sys.executable,
                "-m",
                "keyadmin.emulator",
                "--addr",
                f"127.0.0.1:{self.port}",
                "--app-id",
                self.app_id,
                "--db",
                str(self.db_path),
                *self.extra_args,
            ],
            cwd=Path(__file__).resolve().parents[2],
            env=self.env,
            stdout=self.stdout,
        )
        deadline = time.monotonic() + seconds
        while not self.answers():
            if self.process.poll() is not None:
                raise _ExitedEarly(self.process.returncode)
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the local App Services server did not answer in {seconds} s")
            time.sleep(0.05)
        return self

    def stop(self, seconds: float = 10) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
