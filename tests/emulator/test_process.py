"""Starting the local App Services server as a child process on a busy machine."""

from __future__ import annotations

import socket

import pytest

from keyadmin.emulator import process
from keyadmin.emulator.process import EmulatorProcess, free_port
from tests.conftest import APP_ID


@pytest.fixture
def taken_port():
    """A port something else listens on (and never answers), as another test run's server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_port_taken_before_the_server_binds_it_is_chosen_again(taken_port, tmp_path, monkeypatch):
    ports = iter([taken_port, free_port()])
    monkeypatch.setattr(process, "free_port", lambda: next(ports))

    with EmulatorProcess(APP_ID, tmp_path / "db.sqlite3").start() as server:
        assert server.port != taken_port
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.request_count() == 0


def test_a_port_given_is_not_replaced(taken_port, tmp_path):
    with pytest.raises(RuntimeError, match="exited with"):
        EmulatorProcess(APP_ID, tmp_path / "db.sqlite3", port=taken_port).start()
