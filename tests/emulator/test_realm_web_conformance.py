"""The real realm-web 2.0.1 client, in Node, judges the local App Services server.

tests/conformance/realm_web_conformance.mjs drives every route keyadmin relies on and asserts
each exact status and error code, naming the Realm SDK integration test (run against the real
service) each fact was checked against; this test runs it against a fresh server and wants exit 0.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.conftest import ROOT, start_emulator

SCRIPT = ROOT / "tests" / "conformance" / "realm_web_conformance.mjs"
CUSTOM_TOKEN_SECRET = "conformance-custom-token-secret-0123456789"


@pytest.fixture
def fresh_emulator(tmp_path):
    """A server of its own, with the custom-token provider on, so state and stats stay apart."""
    server = start_emulator(
        tmp_path / "conformance.sqlite3",
        *("--custom-token-secret", CUSTOM_TOKEN_SECRET),
        *("--custom-token-metadata", "name=name,email=email"),
    )
    yield server
    server.stop()


def run_conformance(url: str, app_id: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    node = shutil.which("node")
    assert node, "node is needed for the realm-web conformance run"
    assert (ROOT / "node_modules" / "realm-web").is_dir(), "run `npm ci` first"
    return subprocess.run(
        [node, str(SCRIPT), url, app_id],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_realm_web_accepts_the_local_server(fresh_emulator):
    env = {**os.environ, "CUSTOM_TOKEN_SECRET": CUSTOM_TOKEN_SECRET}
    result = run_conformance(fresh_emulator.url, fresh_emulator.app_id, env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 failed" in result.stdout


def test_realm_web_sees_no_custom_token_provider_when_none_is_configured(emulator):
    env = {key: value for key, value in os.environ.items() if key != "CUSTOM_TOKEN_SECRET"}
    result = run_conformance(emulator.url, emulator.app_id, env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok - a custom-token login while the provider is off is 401 InvalidSession" in (
        result.stdout
    )
