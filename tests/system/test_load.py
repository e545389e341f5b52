"""Load: 50 staff members at once, 40 mixed key actions each, on keyadmin as production runs it.

keyadmin runs under gunicorn with the committed gunicorn.conf.py (2 workers), DEBUG off, a
migrated file SQLite database and collected static files; the local App Services server is this
test's own. Staff sessions are made directly in the database (DEBUG off has no development
sign-in); each staff member then signs in to App Services through keyadmin, as its own user, and
acts as htmx would, in a seeded random order. Every answer must be the fragment the action
expects; at the end the server's keys must equal the test's bookkeeping (nothing lost, nothing
duplicated) and it must have counted exactly one request per action.
"""

from __future__ import annotations

import random
import secrets
import sqlite3
import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from bench.harness import (
    Gunicorn,
    Key,
    Ledger,
    StaffClient,
    check_created,
    check_deleted,
    check_detail,
    check_list,
    check_toggled,
    keyadmin_env,
    make_staff_sessions,
    prepare_keyadmin,
)
from tests.conftest import start_emulator

pytestmark = pytest.mark.load

STAFF = 50
ACTIONS_EACH = 40
SEED = 20261126
MAX_KEYS = 20  # App Services' limit per user
TIME_LIMIT = 75  # seconds for the actions phase; the whole test takes ~30 s on 2 cores
WEIGHTS = {"list": 25, "create": 20, "disable": 12, "enable": 10, "detail": 16, "delete": 17}
# Every change is audited, once; reads (list, detail) never are.
AUDIT_ACTIONS = ("create", "disable", "enable", "delete")
ROUTES = {
    "list": "keys_list",
    "create": "keys_create",
    "disable": "keys_disable",
    "enable": "keys_enable",
    "detail": "keys_get",
    "delete": "keys_delete",
}


@dataclass
class Member:
    """One staff member: a browser session, an App Services user and what it must hold."""

    index: int
    client: StaffClient
    email: str
    ledger: Ledger = field(default_factory=Ledger)
    done: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)


def choose(rng: random.Random, ledger: Ledger) -> tuple[str, Key | None]:
    """The next action and its key, drawn with WEIGHTS among the actions possible now."""
    keys = list(ledger.keys.values())
    enabled = [key for key in keys if not key.disabled]
    disabled = [key for key in keys if key.disabled]
    action = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
    if action == "create" and len(keys) >= MAX_KEYS:
        action = "delete"
    if (action == "disable" and not enabled) or (action == "enable" and not disabled):
        action = "detail"
    if action in ("detail", "delete") and not keys:
        action = "create"
    pool = {"disable": enabled, "enable": disabled}.get(action, keys)
    return action, (rng.choice(pool) if action not in ("list", "create") else None)


def act(member: Member, step: int, action: str, key: Key | None) -> str | None:
    """Do one action through keyadmin; update the bookkeeping; return a problem or None."""
    client, ledger = member.client, member.ledger
    started = time.perf_counter()
    if action == "list":
        response = client.list_keys()
    elif action == "create":
        name = f"m{member.index}-s{step}"
        response = client.create_key(name)
    elif action in ("disable", "enable"):
        response = client.set_disabled(key, action == "disable")
    elif action == "detail":
        response = client.key_detail(key)
    else:
        response = client.delete_key(key)
    member.latencies_ms.append((time.perf_counter() - started) * 1000)
    member.statuses[response.status_code] += 1
    member.done[action] += 1
    if action == "list":
        return check_list(response, ledger)
    if action == "create":
        created, problem = check_created(response, name)
        if created is not None:
            ledger.keys[created.id] = created
        return problem
    if action in ("disable", "enable"):
        problem = check_toggled(response, key, action == "disable")
        key.disabled = action == "disable"
        return problem
    if action == "detail":
        return check_detail(response, key)
    problem = check_deleted(response, key)
    del ledger.keys[key.id]
    return problem


def run_member(member: Member, deadline: float) -> Member:
    rng = random.Random(SEED * 1000 + member.index)
    for step in range(ACTIONS_EACH):
        if time.monotonic() > deadline:
            member.problems.append(f"out of time after {step} actions")
            break
        action, key = choose(rng, member.ledger)
        try:
            problem = act(member, step, action, key)
        except Exception as error:  # a dropped connection or timeout, as the browser saw it
            problem = f"{action}: {type(error).__name__}"
        if problem:
            member.problems.append(f"step {step}: {problem}")
            break  # the bookkeeping can no longer be trusted for this member
    return member


def audit_counts(database: str) -> Counter:
    """(action, outcome) counts in keyadmin's audit trail, read from its SQLite file."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT action, outcome, COUNT(*) FROM keyadmin_auditevent GROUP BY 1, 2")
        return Counter({(action, outcome): count for action, outcome, count in rows})


def test_fifty_staff_members_at_once_lose_and_duplicate_nothing(tmp_path):
    began = time.monotonic()
    emulator = start_emulator(tmp_path / "appservices.sqlite3")
    gunicorn = None
    try:
        env = keyadmin_env(tmp_path, emulator.url, emulator.app_id)
        prepare_keyadmin(env)
        session_keys = make_staff_sessions(env, STAFF, tmp_path)
        gunicorn = Gunicorn(env, tmp_path / "gunicorn.log", workers=2).start()

        users = [(f"load-{i}@example.com", secrets.token_urlsafe(12)) for i in range(STAFF)]
        for email, password in users:
            emulator.create_user(email, password)

        def sign_in(index: int) -> Member:
            email, password = users[index]
            client = StaffClient(gunicorn.url, session_keys[index])
            client.sign_in_to_appservices(email, password)
            return Member(index, client, email)

        with ThreadPoolExecutor(STAFF) as pool:
            members = list(pool.map(sign_in, range(STAFF)))
        emulator.reset_stats()

        started = time.monotonic()
        with ThreadPoolExecutor(STAFF) as pool:
            members = list(pool.map(run_member, members, [started + TIME_LIMIT] * STAFF))
        elapsed = time.monotonic() - started
        for member in members:
            member.client.close()

        problems = [f"staff {m.index}: {p}" for m in members for p in m.problems]
        assert not problems, "\n".join(problems[:20])
        statuses = sum((m.statuses for m in members), Counter())
        assert statuses == Counter({200: STAFF * ACTIONS_EACH}), statuses

        for member in members:
            assert emulator.keys_of(member.email) == member.ledger.expected(), member.email

        done = sum((m.done for m in members), Counter())
        stats = emulator.stats()
        assert stats["total"] == STAFF * ACTIONS_EACH, (stats, done)
        assert {action: stats["by_route"][route] for action, route in ROUTES.items()} == {
            action: done[action] for action in ROUTES
        }

        # audit.record survives a locked database by logging instead: under load, nothing may
        # take that path.
        audited = audit_counts(env["KEYADMIN_SQLITE_PATH"])
        assert audited[("appservices-signin", "ok")] == STAFF, audited
        for action in AUDIT_ACTIONS:
            assert audited[(action, "ok")] == done[action], (action, audited)
        assert not {action for action, _outcome in audited} - {*AUDIT_ACTIONS, "appservices-signin"}
        assert not [k for k in audited if k[1] != "ok"], audited

        log = (tmp_path / "gunicorn.log").read_text()
        assert "Traceback" not in log and "WORKER TIMEOUT" not in log, gunicorn.log_tail()
        assert log.count("Booting worker") == 2, "a worker died and was replaced"

        latencies = sorted(ms for m in members for ms in m.latencies_ms)
        print(
            f"\n{STAFF * ACTIONS_EACH} actions by {STAFF} staff in {elapsed:.1f} s "
            f"({STAFF * ACTIONS_EACH / elapsed:.0f}/s), p50 {statistics.median(latencies):.0f} ms, "
            f"p95 {latencies[int(0.95 * (len(latencies) - 1))]:.0f} ms; {dict(done)}; "
            f"whole test {time.monotonic() - began:.1f} s"
        )
    finally:
        if gunicorn is not None:
            gunicorn.stop()
        emulator.process.terminate()
        emulator.process.wait(timeout=10)
