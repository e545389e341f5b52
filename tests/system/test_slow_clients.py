"""Slow clients (slowloris) against the production set-up of docs/deploy.md (issue 10, item 7).

A gunicorn thread that has started reading a request reads until the request is whole, with no
deadline: clients that send their headers a byte at a time each hold a thread for as long as
they like, and `workers x threads` of them stop keyadmin (`python -m bench.slow_clients`
measures it). The documented set-up puts nginx with the committed
deploy/nginx/keyadmin-front.conf in front: it reads every request whole under deadlines before
gunicorn sees it. These tests start that nginx themselves, from a configuration written into
the test's temporary directory, on a free loopback port, in front of gunicorn with the committed
gunicorn.conf.py on loopback. At most 150 connections at once, every wait bounded.
"""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench.front import (
    FRONT_CONF,
    Nginx,
    SlowClients,
    check_conf,
    front_setting,
    nginx_binary,
    seconds_of,
    slow_body,
)
from bench.harness import plain_session
from tests.conftest import ROOT
from tests.production import keyadmin_server, production_env

# Debian's nginx is installed by .ci/run; elsewhere `apt-get install nginx`.
NO_NGINX = "nginx is not installed (apt-get install nginx; .ci/run installs it)"


def _url_port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _healthz(http: requests.Session, url: str) -> int | None:
    """/healthz's status, or None when it has not answered in 3 s (it answers at once when a
    thread is free: the timeout only keeps a failure from hanging)."""
    try:
        return http.get(url + "/healthz", timeout=(2, 3)).status_code
    except requests.Timeout:
        return None


def _wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def _need_nginx() -> None:
    if nginx_binary() is None:
        if os.environ.get("CI"):
            pytest.fail(f"{NO_NGINX}: CI must have it")
        pytest.skip(NO_NGINX)


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    """nginx (the committed front configuration) in front of gunicorn as documented: 2 x 8."""
    _need_nginx()
    workdir = tmp_path_factory.mktemp("front")
    env = production_env(workdir)
    gunicorn = keyadmin_server(env, workdir / "gunicorn.log", threads=8, workers=2)
    with gunicorn, Nginx(workdir / "nginx", gunicorn.url.removeprefix("http://")) as nginx:
        nginx.gunicorn = gunicorn
        yield nginx


@pytest.fixture
def http():
    session = plain_session()
    yield session
    session.close()


def _gunicorn_saw(front, path: str) -> bool:
    return path in front.gunicorn.log_path.read_text(errors="replace")


def test_metrics_are_not_served_through_the_front(front, http):
    assert http.get(front.gunicorn.url + "/metrics", timeout=10).status_code == 200  # loopback

    answer = http.get(front.url + "/metrics", timeout=10)

    assert answer.status_code == 404
    assert "keyadmin_" not in answer.text
    assert not _gunicorn_saw(front, "GET /metrics 404")


@pytest.mark.load
def test_healthz_answers_through_nginx_while_150_clients_trickle_their_headers(front, http):
    with SlowClients(_url_port(front.url), 150) as slow:
        time.sleep(1)  # every slow client has sent a few bytes more

        answers = [_healthz(http, front.url) for _ in range(5)]

        assert slow.still_open() == 150  # the attack is on: nginx holds every one of them
    assert answers == [200] * 5
    assert not _gunicorn_saw(front, "/slow-client")


@pytest.mark.load
def test_nginx_cuts_off_a_client_that_has_not_sent_its_headers_in_client_header_timeout(front):
    timeout = seconds_of(front_setting("client_header_timeout"))
    assert timeout <= 15  # keeps this test short, and a slow client's hold short

    timed_out_before = front.error_log().count("client timed out")
    with SlowClients(_url_port(front.url), 3, seconds=timeout + 5) as slow:
        all_cut = _wait_until(lambda: slow.still_open() == 0, seconds=timeout + 5)

    assert all_cut, "nginx let clients trickle their headers past client_header_timeout"
    assert slow.answers() == []  # closed without an answer
    assert front.error_log().count("client timed out") - timed_out_before == 3
    assert not _gunicorn_saw(front, "/slow-client")


@pytest.mark.load
def test_slow_bodies_from_one_address_hold_at_most_limit_conn_requests(front, http):
    limit = int(front_setting("limit_conn keyadmin_addr"))
    assert front_setting("limit_conn_status") == "429"
    # From another loopback address than the health check: limit_conn counts per address.
    with SlowClients(_url_port(front.url), limit + 8, head=slow_body(), source="127.0.0.2") as slow:
        refused = _wait_until(lambda: len(slow.answers()) == 8, seconds=5)
        still_open = slow.still_open()

        answer = _healthz(http, front.url)

    assert refused, f"{len(slow.answers())} of {limit + 8} slow bodies refused, not 8"
    assert all(a.startswith(b"HTTP/1.1 429 ") for a in slow.answers())
    assert still_open == limit  # buffered by nginx: none of them holds a gunicorn thread
    assert answer == 200
    assert not _gunicorn_saw(front, "/slow-client")


@pytest.mark.load
def test_without_the_front_each_trickling_client_holds_a_gunicorn_thread(tmp_path, http):
    """The limit the front is there for, shown on one worker of 2 threads.

    gunicorn has no setting that bounds how long a request's headers may take (`timeout` is the
    worker's heartbeat, `keepalive` applies between requests and before the first byte, the
    `limit_request_*` settings are sizes): two clients trickling headers hold both threads, and
    /healthz answers only once they go.
    """
    env = production_env(tmp_path)
    with keyadmin_server(env, tmp_path / "gunicorn.log", threads=2) as bare:
        with SlowClients(_url_port(bare.url), 2) as slow:
            time.sleep(1)  # both are past gunicorn's wait for a first byte, reading headers

            assert _healthz(http, bare.url) is None
            assert slow.still_open() == 2  # gunicorn does not cut them off

        assert _healthz(http, bare.url) == 200


def _guide_site_file() -> str:
    blocks = re.findall(r"```nginx\n(.*?)```", (ROOT / "docs" / "deploy.md").read_text(), re.DOTALL)
    include = f"include /srv/keyadmin/app/{FRONT_CONF.relative_to(ROOT)};"
    sites = [block for block in blocks if include in block]
    assert len(sites) == 1, f"docs/deploy.md has {len(sites)} site files that `{include}`"
    return sites[0]


def _self_signed(workdir: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "keyadmin.example.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = workdir / "fullchain.pem", workdir / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_the_site_file_of_the_deployment_guide_passes_nginx_t(tmp_path):
    """What docs/deploy.md tells to install: it defines what the committed file needs."""
    _need_nginx()
    cert, key = _self_signed(tmp_path)
    site = (
        _guide_site_file()
        .replace("/etc/letsencrypt/live/keyadmin.example.com/fullchain.pem", str(cert))
        .replace("/etc/letsencrypt/live/keyadmin.example.com/privkey.pem", str(key))
        .replace("/srv/keyadmin/app/", f"{ROOT}/")
    )
    assert str(cert) in site and str(key) in site

    result = check_conf(tmp_path / "nginx", site)

    assert result.returncode == 0, result.stderr
