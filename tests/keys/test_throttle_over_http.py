"""Sign-in throttling over real HTTP: the limit holds across gunicorn workers and instances.

Two keyadmin servers share one database file, as instances behind a load balancer share theirs:
A with two gunicorn workers, B with one. The guesses alternate between them, so a limit kept in
one process's memory would let each process's own share through.
"""

from __future__ import annotations

import re
import sqlite3

from tests.production import (
    SESSION_COOKIE,
    Browser,
    keyadmin_server,
    manage,
    production_env,
    staff_session,
)

SIGNIN = "/appservices/sign-in/"
TOO_MANY = re.compile(r"Too many sign-in attempts\. Try again in (\d+) s\.")


def test_the_limit_holds_across_workers_and_instances(tmp_path, emulator, user_credentials):
    env = production_env(
        tmp_path,
        emulator.url,
        KEYADMIN_SSL_REDIRECT="false",
        KEYADMIN_SIGNIN_TARGET_LIMIT="3",
    )
    manage(env, "migrate", "--noinput", "--verbosity", "0")
    session_key = staff_session(env, tmp_path, "Pat Support", "viewer")
    email, password = user_credentials

    with (
        keyadmin_server(env, tmp_path / "a.log", workers=2) as a,
        keyadmin_server(env, tmp_path / "b.log") as b,
    ):
        browser = Browser({SESSION_COOKIE: session_key})
        assert browser.get(a.url + SIGNIN).status_code == 200, a.log_tail()
        emulator.reset_stats()
        # A new connection each time, so A's two workers take turns as the kernel chooses.
        answers = [
            browser.post(
                (a, b)[n % 2].url + SIGNIN,
                data={"provider": "local-userpass", "email": email, "password": f"guess-{n}"},
                headers={"Connection": "close"},
            )
            for n in range(10)
        ]
        htmx = browser.post(
            b.url + SIGNIN,
            data={"provider": "local-userpass", "email": email, "password": password},
            headers={"HX-Request": "true", "Connection": "close"},
        )
        right = browser.post(
            a.url + SIGNIN,
            data={"provider": "local-userpass", "email": email, "password": password},
            headers={"Connection": "close"},
        )
        browser.close()

        assert [answer.status_code for answer in answers] == [200] * 3 + [429] * 7, a.log_tail()
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

    with sqlite3.connect(tmp_path / "keyadmin.sqlite3") as db:
        ((blocks,),) = db.execute(
            "SELECT count(*) FROM keyadmin_auditevent WHERE action = 'throttled'"
        ).fetchall()
        stored = " ".join(str(row) for row in db.execute("SELECT * FROM keyadmin_signinthrottle"))
    assert blocks == 1
    assert email not in stored
