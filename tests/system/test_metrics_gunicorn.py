"""/metrics under gunicorn with the committed gunicorn.conf.py: all workers in every scrape.

Two workers count in their own files in PROMETHEUS_MULTIPROC_DIR; whichever answers a scrape
adds up both, a worker's counts outlive it, and a start begins from nothing.
"""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.production import keyadmin_server, manage, production_env


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("metrics")
    metrics_dir = workdir / "metrics"
    metrics_dir.mkdir()
    # What an earlier start left: never added to this one's counts.
    (metrics_dir / "counter_999999.db").write_bytes(b"left over")
    env = production_env(workdir, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    manage(env, "migrate", "--noinput", "--verbosity", "0")
    with keyadmin_server(env, workdir / "gunicorn.log", workers=2) as running:
        running.metrics_dir = metrics_dir
        yield running


def get(url: str) -> requests.Response:
    """One request on a connection of its own, so either worker may take it."""
    with requests.Session() as session:
        session.trust_env = False
        return session.get(url, headers={"Connection": "close"}, timeout=10)


def healthz_count(server) -> float:
    response = get(server.url + "/metrics")
    assert response.status_code == 200, server.log_tail()
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "keyadmin_http_requests_total" and sample.labels["route"] == "healthz"
    )


def workers_that_counted(server) -> set[int]:
    return {int(path.stem.rsplit("_", 1)[1]) for path in server.metrics_dir.glob("counter_*.db")}


def test_an_earlier_starts_files_are_gone(server):
    assert not (server.metrics_dir / "counter_999999.db").exists()


def test_every_scrape_adds_up_both_workers(server):
    before = healthz_count(server)
    sent = 0
    with ThreadPoolExecutor(8) as pool:
        # Until both workers have answered some (the kernel picks which one accepts).
        while not set(server.worker_pids()) <= workers_that_counted(server) and sent < 800:
            answers = list(pool.map(get, [server.url + "/healthz"] * 40))
            assert all(answer.status_code == 200 for answer in answers)
            sent += len(answers)
    assert set(server.worker_pids()) <= workers_that_counted(server)

    # Each scrape is answered by one worker or the other, and each says the same.
    assert [healthz_count(server) for _ in range(6)] == [before + sent] * 6


def test_a_workers_counts_outlive_it(server):
    for _ in range(20):
        assert get(server.url + "/healthz").status_code == 200
    before = healthz_count(server)
    old = server.worker_pids()

    os.kill(old[0], signal.SIGKILL)  # gunicorn starts another; child_exit marks this one dead
    deadline = time.monotonic() + 30
    while old[0] in server.worker_pids() or len(server.worker_pids()) < 2:
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.1)

    assert healthz_count(server) == before


def metrics_dirs_mapped_by(pid: int) -> set[Path]:
    """The directories of the metrics files a process has mapped into its memory."""
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    return {Path(line.split()[-1]).parent for line in maps if line.endswith(".db")}


def test_without_a_directory_given_each_start_makes_its_own_and_removes_it(tmp_path):
    env = production_env(tmp_path)  # the harness never passes PROMETHEUS_MULTIPROC_DIR on
    with keyadmin_server(env, tmp_path / "gunicorn.log", workers=1) as running:
        assert get(running.url + "/healthz").status_code == 200
        (first,) = running.worker_pids()
        (made,) = metrics_dirs_mapped_by(first)
        assert made.name.startswith("keyadmin-metrics-")

        # A HUP reads gunicorn.conf.py again and replaces the worker: same directory, same counts.
        os.kill(running.process.pid, signal.SIGHUP)
        deadline = time.monotonic() + 30
        while len(running.worker_pids()) != 1 or running.worker_pids() == [first]:
            assert time.monotonic() < deadline, running.log_tail()
            time.sleep(0.1)
        assert healthz_count(running) == 1
        assert metrics_dirs_mapped_by(running.worker_pids()[0]) == {made}

    assert not made.exists()
