"""Two undos of one lock-down at the same moment, over real HTTP: one pass upstream, not two.

Two staff members, each connected to the same App Services user, open the undo page of one
lock-down and press "Undo this lock-down" together, one on each of two keyadmin instances that
share a database (A with two gunicorn workers, B with one), as instances behind a load balancer
do. A lock held in one process's memory would let both through. Each test runs on a SQLite file,
and again on a PostgreSQL database of its own when DATABASE_URL names a PostgreSQL server.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.production import (
    SESSION_COOKIE,
    Browser,
    staff_session,
    two_instances,
)
from tests.support import rendered_fields

BUSY = re.compile(
    r"This lock-down is already being undone by (Pat Support|Olga Operator), since "
    r"\d{4}-\d\d-\d\d \d\d:\d\d \(UTC\)\."
)
DONE = re.compile(r"undone: 2 of 2 keys enabled again")


@pytest.fixture(params=["sqlite", "postgresql"])
def servers(request, tmp_path, emulator):
    with two_instances(request.param, tmp_path, emulator.url) as (a, b, env):
        yield a, b, env, tmp_path


def query(env, workdir, sql: str) -> list[tuple]:
    if "DATABASE_URL" in env:
        import psycopg

        with psycopg.connect(env["DATABASE_URL"]) as db:
            return db.execute(sql).fetchall()
    with sqlite3.connect(workdir / "keyadmin.sqlite3") as db:
        return db.execute(sql).fetchall()


def connected_browser(env, workdir, server, name: str, credentials) -> Browser:
    browser = Browser({SESSION_COOKIE: staff_session(env, workdir, name)})
    assert browser.get(f"{server.url}/appservices/sign-in/").status_code == 200
    email, password = credentials
    response = browser.post(
        f"{server.url}/appservices/sign-in/",
        data={"provider": "local-userpass", "email": email, "password": password},
    )
    assert response.status_code == 302, server.log_tail()
    return browser


def test_two_undos_at_once_on_two_instances_make_one_pass_upstream(
    servers, emulator, user_credentials
):
    a, b, env, workdir = servers
    pat = connected_browser(env, workdir, a, "Pat Support", user_credentials)
    olga = connected_browser(env, workdir, b, "Olga Operator", user_credentials)
    for name in ("key-1", "key-2"):
        form = {**rendered_fields(pat.get(f"{a.url}/keys/").text, "create-form"), "name": name}
        assert pat.post(f"{a.url}/keys/new/", data=form).status_code == 200, a.log_tail()
    confirm = pat.get(f"{a.url}/keys/lock-down/").text
    locked = pat.post(
        f"{a.url}/keys/lock-down/run/",
        data={
            "bound_to": rendered_fields(confirm.split('action="/keys/lock-down/run/"', 1)[1])[
                "bound_to"
            ],
            "key": re.findall(r'name="key" value="([0-9a-f]{24})"', confirm),
        },
    ).text
    assert ": 2 of 2 keys disabled" in " ".join(locked.split()), a.log_tail()
    lockdown_id = re.search(r'Batch id <code translate="no">([0-9a-f-]{36})</code>', locked)[1]
    undo = f"/keys/lock-down/{lockdown_id}/undo/"
    tabs = [(pat, a), (olga, b)]
    forms = [
        rendered_fields(browser.get(server.url + undo).text.split(f'action="{undo}run/"', 1)[1])
        for browser, server in tabs
    ]
    emulator.reset_stats()
    emulator.set_latency(400)  # the first undo takes 1.2 s upstream: the second arrives meanwhile
    together = threading.Barrier(2)

    def press(n: int):
        browser, server = tabs[n]
        together.wait(timeout=10)
        return browser.post(f"{server.url}{undo}run/", data=forms[n])

    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(press, range(2)))
    emulator.set_latency(0)

    texts = [" ".join(answer.text.split()) for answer in answers]
    assert [answer.status_code for answer in answers] == [200, 200], a.log_tail() + b.log_tail()
    [winner] = [n for n, text in enumerate(texts) if DONE.search(text)]
    loser = texts[1 - winner]
    busy = BUSY.search(loser)
    assert busy, loser[:3000]
    assert busy[1] == ("Pat Support", "Olga Operator")[winner]  # names the one who is undoing
    # One pass upstream: one list and one enable per key, whoever won.
    assert emulator.request_count("keys_list") == 1
    assert emulator.request_count("keys_enable") == 2
    assert emulator.request_count() == 3
    assert [key["disabled"] for key in emulator.keys_of(user_credentials[0])] == [False, False]
    rows = query(
        env,
        workdir,
        "SELECT outcome, staff_name, detail FROM keyadmin_auditevent "
        "WHERE action = 'lock-down-undo' ORDER BY id",
    )
    assert sorted(row[0] for row in rows) == ["denied", "ok"]
    [denied] = [row for row in rows if row[0] == "denied"]
    assert denied[1] == ("Pat Support", "Olga Operator")[1 - winner]
    assert denied[2].startswith(f"lock-down {lockdown_id}: already being undone by undo ")
    assert query(env, workdir, "SELECT count(*) FROM keyadmin_undoclaim") == [(0,)]  # released
    for browser, _server in tabs:
        browser.close()
