"""Two keyadmin instances on one PostgreSQL database, as a load-balanced deployment runs them.

Each instance is gunicorn with the committed gunicorn.conf.py, DEBUG off, on its own loopback port;
both share the database and the secrets, and nothing else. A staff member's session, and the App
Services sign-in kept in it, work on either instance; every action is recorded once in the audit
trail, by whichever instance did it. Needs DATABASE_URL to name a PostgreSQL server (CI's second
run, `make test-postgres`): the test makes a database of its own there, and drops it.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from tests.production import (
    SESSION_COOKIE,
    Browser,
    keyadmin_server,
    manage,
    production_env,
    staff_session,
)
from tests.support import rendered_fields

pytestmark = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="needs PostgreSQL: set DATABASE_URL=postgres://... (make test-postgres)",
)

SECRET_PANEL = re.compile(r'<code id="secret-value-([0-9a-f]{24})"')


@pytest.fixture
def database():
    """A fresh PostgreSQL database on DATABASE_URL's server; its URL. Dropped afterwards."""
    import dj_database_url
    import psycopg

    url = settings.DATABASE_URL
    config = dj_database_url.parse(url)
    name = f"keyadmin_two_{secrets.token_hex(4)}"
    admin = psycopg.connect(
        host=config["HOST"] or None,
        port=config["PORT"] or None,
        user=config["USER"] or None,
        password=config["PASSWORD"] or None,
        dbname=config["NAME"],
        autocommit=True,
        **config.get("OPTIONS", {}),
    )
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlsplit(url)._replace(path=f"/{name}").geturl(), admin, name
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def audit_rows(admin, dbname: str) -> list[tuple[str, str, str, str]]:
    import psycopg

    params = admin.info.get_parameters()
    with psycopg.connect(
        host=admin.info.host,
        port=admin.info.port,
        user=admin.info.user,
        password=admin.info.password,
        dbname=dbname,
        sslmode=params.get("sslmode", "prefer"),
    ) as db:
        return db.execute(
            "SELECT action, outcome, request_id, staff_subject FROM keyadmin_auditevent"
        ).fetchall()


def test_a_sign_in_on_one_instance_holds_on_the_other_and_actions_are_audited_once(
    tmp_path, database, emulator, user_credentials
):
    url, admin, dbname = database
    env = production_env(tmp_path, emulator.url, DATABASE_URL=url, KEYADMIN_SSL_REDIRECT="false")
    manage(env, "migrate", "--noinput", "--verbosity", "0")
    session_key = staff_session(env, tmp_path, "Pat Support")
    email, password = user_credentials

    with (
        keyadmin_server(env, tmp_path / "a.log") as a,
        keyadmin_server(env, tmp_path / "b.log") as b,
    ):
        browser = Browser({SESSION_COOKIE: session_key})
        htmx = {"HX-Request": "true"}

        # App Services sign-in on A ...
        assert browser.get(f"{a.url}/appservices/sign-in/").status_code == 200, a.log_tail()
        signin = browser.post(
            f"{a.url}/appservices/sign-in/",
            data={"provider": "local-userpass", "email": email, "password": password},
        )
        assert signin.status_code == 302, a.log_tail()
        # ... holds on B, which creates a key ...
        keys = browser.get(f"{b.url}/keys/")
        assert keys.status_code == 200, b.log_tail()
        assert email in keys.text
        # Every form posts the App Services user it was rendered for (and its create nonce).
        form = rendered_fields(keys.text, "create-form")
        create = browser.post(
            f"{b.url}/keys/new/", data={**form, "name": "two-instances"}, headers=htmx
        )
        assert create.status_code == 200, b.log_tail()
        (key_id,) = SECRET_PANEL.findall(create.text)
        # ... that A disables.
        disable = browser.post(
            f"{a.url}/keys/{key_id}/disable/",
            data={**rendered_fields(create.text, f"toggle-{key_id}"), "name": "two-instances"},
            headers=htmx,
        )
        assert disable.status_code == 200, a.log_tail()
        assert emulator.keys_of(email)[0]["disabled"] is True

        # Signing out on B ends the session on A as well.
        assert browser.post(f"{b.url}/sign-out/").status_code == 200
        assert browser.get(f"{a.url}/keys/").status_code == 302
        browser.close()

    rows = audit_rows(admin, dbname)
    for response, expected in (
        (signin, "appservices-signin"),
        (create, "create"),
        (disable, "disable"),
    ):
        request_id = response.headers["X-Request-ID"]
        assert [(a, o) for a, o, rid, _ in rows if rid == request_id] == [(expected, "ok")], rows
    actions = [action for action, *_ in rows]
    for action in ("appservices-signin", "create", "disable", "signout"):
        assert actions.count(action) == 1, rows
    assert {subject for *_, subject in rows} == {"sub-pat-support"}
