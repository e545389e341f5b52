"""Sign-in throttling over real HTTP: the limit holds across gunicorn workers and instances.

Two keyadmin servers share one database, as instances behind a load balancer share theirs: A
with two gunicorn workers, B with one. The guesses alternate between them, so a limit kept in one
process's memory would let each process's own share through. Each test runs on a SQLite file,
and again on a PostgreSQL database of its own when DATABASE_URL names a PostgreSQL server (CI's
second run), where row locks rather than SQLite's single writer keep the count.
"""

from __future__ import annotations

import re
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.harness import Gunicorn
from tests.production import (
    SESSION_COOKIE,
    Browser,
    staff_session,
    two_instances,
)

SIGNIN = "/appservices/sign-in/"
TOO_MANY = re.compile(r"Too many sign-in attempts\. Try again in (\d+) s\.")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def servers(request, tmp_path_factory, emulator):
    """A (two workers) and B (one) on one database, with the target limit at 3."""
    workdir = tmp_path_factory.mktemp("throttle")
    with two_instances(request.param, workdir, emulator.url, KEYADMIN_SIGNIN_TARGET_LIMIT="3") as (
        a,
        b,
        env,
    ):
        yield Servers(a, b, env, workdir)


@dataclass
class Servers:
    a: Gunicorn
    b: Gunicorn
    env: dict[str, str]
    workdir: Path

    def browser(self, name: str) -> Browser:
        """A signed-in staff member's browser, with its CSRF cookie."""
        browser = Browser({SESSION_COOKIE: staff_session(self.env, self.workdir, name, "viewer")})
        assert browser.get(self.a.url + SIGNIN).status_code == 200, self.a.log_tail()
        return browser

    def query(self, sql: str, *params) -> list[tuple]:
        if "DATABASE_URL" in self.env:
            import psycopg

            with psycopg.connect(self.env["DATABASE_URL"]) as db:
                return db.execute(sql.replace("?", "%s"), params).fetchall()
        with sqlite3.connect(self.workdir / "keyadmin.sqlite3") as db:
            return db.execute(sql, params).fetchall()

    def audit_count(self, action: str) -> int:
        sql = "SELECT count(*) FROM keyadmin_auditevent WHERE action = ?"
        ((count,),) = self.query(sql, action)
        return count


def guess(browser: Browser, server: Gunicorn, email: str, password: str, **headers: str):
    return browser.post(
        server.url + SIGNIN,
        data={"provider": "local-userpass", "email": email, "password": password},
        # A new connection each time, so A's two workers take turns as the kernel chooses.
        headers={"Connection": "close", **headers},
    )


def test_the_limit_holds_across_workers_and_instances(servers, emulator, user_credentials):
    email, password = user_credentials
    browser = servers.browser("Pat Support")
    throttled_before = servers.audit_count("throttled")
    emulator.reset_stats()

    answers = [guess(browser, (servers.a, servers.b)[n % 2], email, f"g-{n}") for n in range(10)]
    htmx = guess(browser, servers.b, email, password, **{"HX-Request": "true"})
    right = guess(browser, servers.a, email, password)
    browser.close()

    assert [answer.status_code for answer in answers] == [200] * 3 + [429] * 7
    assert emulator.request_count("login") == 3
    for answer in answers[3:]:
        waited = TOO_MANY.search(answer.text)
        assert waited, answer.text[:2000]
        assert waited.group(1) == answer.headers["Retry-After"]
    assert htmx.status_code == 429
    assert TOO_MANY.search(htmx.text)
    assert htmx.headers["HX-Reswap"] == "none"
    assert right.status_code == 429  # the right password waits too
    assert emulator.request_count("login") == 3
    assert servers.audit_count("throttled") == throttled_before + 1
    stored = " ".join(str(row) for row in servers.query("SELECT * FROM keyadmin_signinthrottle"))
    assert email not in stored


def test_concurrent_guesses_cannot_all_slip_under_the_limit(servers, emulator, user_credentials):
    email, _password = user_credentials
    browsers = [servers.browser(f"Staff {n}") for n in range(2)]
    emulator.reset_stats()
    emulator.set_latency(200)  # every guess is in flight while the others arrive

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(
            pool.map(
                lambda n: guess(browsers[n % 2], (servers.a, servers.b)[n % 2], email, f"c-{n}"),
                range(8),
            )
        )
    emulator.set_latency(0)
    for browser in browsers:
        browser.close()

    assert sorted(answer.status_code for answer in answers) == [200] * 3 + [429] * 5
    assert emulator.request_count("login") == 3
