"""Deploy checks that run with every test run.

- `manage.py check --deploy` with production settings prints nothing (warnings fail);
- the Content-Security-Policy on real responses allows no inline or eval'd code (the browser
  tests already fail on any CSP violation, through the `problems` fixture);
- bandit finds nothing of medium or high severity in keyadmin/.
ruff is run by `make test` itself.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.harness import keyadmin_env
from tests.conftest import ROOT
from tests.support import HTMX, connected


def _production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A production environment: DEBUG off (the default), real-looking secrets, a host name.

    Built from nothing (inherit=False): the test run's own variables (KEYADMIN_SSL_REDIRECT=false,
    ...) must not soften what is checked, and the upstream is App Services' default.
    """
    settings = {
        "KEYADMIN_ALLOWED_HOSTS": "keyadmin.example.com",
        "KEYADMIN_CSRF_TRUSTED_ORIGINS": "https://keyadmin.example.com",
        "KEYADMIN_SSL_REDIRECT": None,
        "KEYADMIN_STATIC_ROOT": None,
        "APPSERVICES_BASE_URL": None,
        "APPSERVICES_ALLOWED_HOSTS": None,
        "PYTHONUNBUFFERED": None,
        **extra,
    }
    return keyadmin_env(
        tmp_path,
        upstream_url="",
        app_id="keyadmin-prod-abcde",
        sso={
            "KEYADMIN_SSO": "remote-user",
            "KEYADMIN_SSO_ISSUER": "https://sso.example.com/realms/staff",
            "KEYADMIN_SSO_ALLOWED_GROUPS": "keyadmin-staff",
            "KEYADMIN_ROLE_GROUPS_VIEWER": "keyadmin-staff",
            "KEYADMIN_ROLE_GROUPS_OPERATOR": "keyadmin-operators",
        },
        inherit=False,
        **settings,
    )


def _check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = _check_deploy(_production_env(tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr
    assert "?: (security." not in result.stdout + result.stderr


def test_check_deploy_does_fail_on_a_weakened_setting(tmp_path):
    """The control: the check above would notice (here, no https redirect: security.W008)."""
    result = _check_deploy(_production_env(tmp_path, KEYADMIN_SSL_REDIRECT="false"))

    assert result.returncode != 0
    assert "security.W008" in result.stdout + result.stderr


# --- Content-Security-Policy ------------------------------------------------------------------

UNSAFE = ("'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "'wasm-unsafe-eval'", "*", "data:")


def _policy(name: str, response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"{name}: no Content-Security-Policy"
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def _assert_strict(name: str, response) -> None:
    policy = _policy(name, response)
    for directive in ("script-src", "style-src", "default-src", "connect-src"):
        assert policy[directive] == ["'self'"], (name, directive, policy)
    for directive in ("object-src", "base-uri", "frame-ancestors"):
        assert policy[directive] == ["'none'"], (name, directive, policy)
    for directive, sources in policy.items():
        allowed = {"data:"} if directive == "img-src" else set()  # the empty favicon only
        assert not (set(sources) & set(UNSAFE)) - allowed, (name, directive, sources)
    report_only = response.headers.get("Content-Security-Policy-Report-Only", "")
    assert "unsafe" not in report_only, (name, report_only)


@pytest.mark.django_db
@pytest.mark.staff_sso
def test_every_kind_of_response_carries_a_strict_policy(client, emulator, user_credentials):
    connected(client, user_credentials)
    responses = {
        "keys page": client.get("/keys/"),
        "keys fragment": client.get("/keys/", headers=HTMX),
        "create answer": client.post("/keys/new/", {"name": "csp-check"}, headers=HTMX),
        "create page": client.post("/keys/new/", {"name": "bad name"}),
        "sign-in page": client.get("/appservices/sign-in/"),
        "missing key": client.get("/keys/000000000000000000000000/"),
        "not found": client.get("/no/such/page/"),
        "method not allowed": client.get("/keys/new/"),
        "signed out": client.post("/sign-out/"),
    }
    assert responses["keys page"].status_code == 200
    assert "secret-panel" in responses["create answer"].content.decode()
    for name, response in responses.items():
        _assert_strict(name, response)


def test_no_template_needs_inline_code():
    """Belt and braces for the policy above: no inline script, handler or style attribute."""
    found = []
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        for pattern in (
            r"<script(?![^>]*\bsrc=)[^>]*>",
            r"\son[a-z]+\s*=",
            r"\sstyle\s*=",
            r"=\s*[\"']?\s*javascript:",
        ):
            found += [f"{template.name}: {m}" for m in re.findall(pattern, text, re.I)]
    assert found == []


# --- bandit -----------------------------------------------------------------------------------


def test_bandit_finds_nothing_of_medium_or_high_severity():
    result = subprocess.run(
        [sys.executable, "-m", "bandit", "-r", "keyadmin", "-ll", "-q", "-f", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "No module named bandit" not in result.stderr, "install the test extras: make test"
    report = json.loads(result.stdout)
    findings = [
        f"{r['filename']}:{r['line_number']} {r['test_id']} {r['issue_severity']}: "
        f"{r['issue_text']}"
        for r in report["results"]
    ]
    assert findings == [], "\n".join(findings)
    assert report["errors"] == []
    assert report["metrics"]["_totals"]["loc"] > 1000, "bandit read keyadmin/"
    assert result.returncode == 0
