"""The production command from docs/deploy.md: collectstatic, then gunicorn with gunicorn.conf.py.

One server, DEBUG off, the https redirect on (the default), JSON logs: static files come from
WhiteNoise under hashed names with far-future caching and a gzip variant, the health checks
answer over plain http, and every request leaves one JSON log line without its query string.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.production import Browser, collected_static, keyadmin_server, production_env

IMMUTABLE = "max-age=315360000, public, immutable"
# What the TLS proxy in front says; gunicorn trusts it from loopback (forwarded_allow_ips).
VIA_TLS_PROXY = {"X-Forwarded-Proto": "https"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("serving")
    env = production_env(workdir, KEYADMIN_LOG_FORMAT="json")
    with keyadmin_server(env, workdir / "gunicorn.log") as running:
        running.static_root = collected_static()
        yield running


@pytest.fixture
def web():
    web = Browser()
    yield web
    web.close()  # no kept-alive connection holds up the server's graceful stop


def test_a_hashed_asset_is_served_compressed_and_cached_for_ever(server, web):
    manifest = json.loads((server.static_root / "staticfiles.json").read_text())["paths"]
    hashed = manifest["keyadmin/keyadmin.css"]
    assert re.fullmatch(r"keyadmin/keyadmin\.[0-9a-f]{12}\.css", hashed)
    assert (server.static_root / f"{hashed}.gz").exists()  # compressed once, at collectstatic

    response = web.get(
        f"{server.url}/static/{hashed}", headers={**VIA_TLS_PROXY, "Accept-Encoding": "gzip"}
    )

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == IMMUTABLE
    assert response.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response.headers["Vary"]
    assert response.content == (server.static_root / hashed).read_bytes()


@pytest.mark.parametrize("path", ["keyadmin/keyadmin.js", "keyadmin/keyadmin.css"])
def test_our_script_and_stylesheet_are_served_minified_under_the_hash_of_what_is_served(
    server, web, path
):
    hashed = json.loads((server.static_root / "staticfiles.json").read_text())["paths"][path]
    source = (Path(__file__).resolve().parents[2] / "static" / path).read_bytes()

    served = web.get(f"{server.url}/static/{hashed}", headers=VIA_TLS_PROXY).content

    assert len(served) < 0.9 * len(source)
    assert b"\n  " not in served  # no indentation left (comments neither: see the browser test)
    # A changed minifier output gets a new name, so no browser keeps a stale cached copy.
    assert hashlib.md5(served, usedforsecurity=False).hexdigest()[:12] in hashed
    if path.endswith(".js"):
        checked = subprocess.run(
            ["node", "--check", "-"], input=served, capture_output=True, timeout=30
        )
        assert checked.returncode == 0, checked.stderr.decode()[-500:]


def test_pages_link_the_hashed_names(server, web):
    hashed = json.loads((server.static_root / "staticfiles.json").read_text())["paths"]
    response = web.get(f"{server.url}/signed-out/", headers=VIA_TLS_PROXY)

    assert response.status_code == 200
    assert f'href="/static/{hashed["keyadmin/keyadmin.css"]}"' in response.text
    assert f'src="/static/{hashed["keyadmin/keyadmin.js"]}"' in response.text


def test_an_unhashed_name_is_cached_only_briefly(server, web):
    response = web.get(f"{server.url}/static/keyadmin/keyadmin.css", headers=VIA_TLS_PROXY)

    assert response.status_code == 200
    assert "immutable" not in response.headers["Cache-Control"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_checks_answer_plain_http_and_are_never_cached(server, web, path):
    response = web.get(server.url + path)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["status"] == "ok"
    assert "no-store" in response.headers["Cache-Control"]


def test_everything_else_is_redirected_to_https(server, web):
    response = web.get(f"{server.url}/keys/")

    assert response.status_code == 301
    assert response.headers["Location"].startswith("https://127.0.0.1")


def test_each_request_leaves_one_json_line_without_its_query_string(server, web):
    response = web.get(f"{server.url}/readyz?token=sentinel-in-the-query-string")
    request_id = response.headers["X-Request-ID"]

    lines = [line for line in server.log_tail(400).splitlines() if request_id in line]
    assert len(lines) == 1, lines
    entry = json.loads(lines[0])
    assert entry["logger"] == "keyadmin.access"
    assert (entry["method"], entry["path"], entry["status"]) == ("GET", "/readyz", 200)
    assert entry["request_id"] == request_id
    assert entry["duration_ms"] >= 0
    assert "sentinel" not in server.log_tail(400)
