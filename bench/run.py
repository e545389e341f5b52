"""`make bench`: keyadmin under gunicorn (gunicorn.conf.py) on the local App Services server.

    python -m bench.run [--samples 100] [--latency-ms 50] [--duration 5] [--out bench/results.json]

Measures, and prints beside the goals (figures, not pass/fail):
  1. p50/p95 of each action through keyadmin, sent as htmx sends it, at 50 ms upstream latency,
     and of the same App Services request made directly (the floor), and their ratio;
  2. upstream requests per action (the local server's own counts);
  3. bytes on the wire: the first load of the keys page with every asset it references
     (Accept-Encoding: gzip, static files collected and compressed as in production), and each
     action's answer;
  4. server CPU per action (utime+stime of the gunicorn workers around a batch) and memory per
     worker (VmRSS; Pss too, which splits pages shared with the master);
  5. requests per second at 0 ms latency for list and for enable/disable, 8 concurrent clients;
  6. the stack's floor (bench/floor_app.py): one Django view with a database session and one
     pooled `requests` call under the same gunicorn configuration, its p50 ratio and CPU.

Everything runs on 127.0.0.1; every process started here is stopped on the way out. No session
key, token, password or key secret is printed or written to the results.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin

import requests

from bench import chart
from bench.floor import measure_floor
from bench.harness import (
    CLIENT_API,
    KEYS,
    PYTHON,
    ROOT,
    Emulator,
    Gunicorn,
    Key,
    Ledger,
    StaffClient,
    check_created,
    check_deleted,
    check_detail,
    check_list,
    check_note_saved,
    check_toggled,
    cpu_seconds,
    keyadmin_env,
    make_staff_sessions,
    memory_kib,
    plain_session,
    prepare_keyadmin,
)

APP_ID = "keyadmin-bench"
APP_KEY = "bench"  # the bench's apps file (act-for enabled, HS256), see `apps_file`
ACT_FOR_SECRET = "keyadmin-bench-act-for-signing-key-" + "x" * 12  # 47 bytes, within 32-512
ACTIONS = ("list", "create", "disable", "enable", "detail", "delete")
ROUTES = {
    "list": "keys_list",
    "create": "keys_create",
    "disable": "keys_disable",
    "enable": "keys_enable",
    "detail": "keys_get",
    "delete": "keys_delete",
    "act_for_start": "login",
}
MAX_KEYS = 20
BASE_KEYS = 5  # keys the bench user holds besides the one each round creates and deletes


@dataclass(frozen=True)
class ActionGoal:
    """What one user action may cost: App Services requests, and server CPU back to back."""

    label: str
    upstream: int
    cpu_ms: float | None


# The goals of issue 14, one line per measured action (a new route: one more line, and its
# measurement in `measure_cpu_and_upstream`). Keys are the kinds the bench measures.
ACTION_GOALS = {
    "list": ActionGoal("list (5 keys)", 1, 4),
    "list_20": ActionGoal("list (20 keys)", 1, 8),
    "create": ActionGoal("create", 1, 4),
    "disable": ActionGoal("disable", 1, 3),
    "enable": ActionGoal("enable", 1, 3),
    "detail": ActionGoal("detail", 1, 3),
    "delete": ActionGoal("delete", 1, 3),
    "note_edit": ActionGoal("note edit", 0, None),
    "act_for_start": ActionGoal("act-for start", 1, None),
}
GOALS = {
    "p50_ratio": 1.10,  # keyadmin p50 / direct p50 at 50 ms upstream, every action
    "p50_ratio_stretch": 1.05,
    # 0 ms upstream, 8 keep-alive clients: twice the 2026-12-01 figures (246 and 250 req/s).
    "throughput_rps": {"list": 2 * 246, "enable/disable": 2 * 250},
    "first_load_kb": 30,  # the keys page with every asset, gzipped
    "answer_kb_gzipped": 2,  # each action's answer
    "rss_mb_per_worker": 100,
}


class BenchError(Exception):
    pass


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def wire_bytes(response: requests.Response, body: bytes) -> int:
    """Status line + headers + body, as the server sent them."""
    raw = response.raw._original_response  # http.client.HTTPResponse
    head = len(f"HTTP/1.1 {response.status_code} {response.reason}\r\n")
    head += sum(len(name) + len(value) + 4 for name, value in raw.msg.items()) + 2
    return head + len(body)


# --- The floor: the same App Services requests, made directly ---


class Direct:
    """The App Services client API called with `requests`, as keyadmin calls it."""

    def __init__(self, url: str, app_id: str, email: str, password: str) -> None:
        self.url = url
        self.http = plain_session()
        self.http.headers["Accept"] = "application/json"
        login = self.http.post(
            f"{url}{CLIENT_API}/app/{app_id}/auth/providers/local-userpass/login",
            json={"username": email, "password": password},
            timeout=10,
        )
        login.raise_for_status()
        self.bearer = login.json()["refresh_token"]
        self.auth = {"Authorization": f"Bearer {self.bearer}"}

    def call(self, method: str, path: str, expect: int, body: dict | None = None) -> dict | None:
        response = self.http.request(
            method, f"{self.url}{CLIENT_API}{path}", json=body, headers=self.auth, timeout=10
        )
        if response.status_code != expect:
            raise BenchError(f"direct {method} {path.split('/')[2]}: HTTP {response.status_code}")
        return response.json() if response.content else None

    def list(self) -> None:
        self.call("GET", "/auth/api_keys", 200)

    def create(self, name: str) -> str:
        return self.call("POST", "/auth/api_keys", 201, {"name": name})["_id"]

    def disable(self, key_id: str) -> None:
        self.call("PUT", f"/auth/api_keys/{key_id}/disable", 204)

    def enable(self, key_id: str) -> None:
        self.call("PUT", f"/auth/api_keys/{key_id}/enable", 204)

    def detail(self, key_id: str) -> None:
        self.call("GET", f"/auth/api_keys/{key_id}", 200)

    def delete(self, key_id: str) -> None:
        self.call("DELETE", f"/auth/api_keys/{key_id}", 204)


# --- Through keyadmin, checked ---


class Staff:
    """A staff member acting through keyadmin, with the bookkeeping that checks each answer."""

    def __init__(self, client: StaffClient, email: str = "", password: str = "") -> None:
        self.client = client
        self.email = email
        self.password = password
        self.ledger = Ledger()
        self.last_response: requests.Response | None = None

    def _ok(self, response: requests.Response, problem: str | None) -> None:
        self.last_response = response
        if problem:
            raise BenchError(problem)

    def list(self) -> None:
        response = self.client.list_keys()
        self._ok(response, check_list(response, self.ledger))

    def create(self, name: str) -> Key:
        response = self.client.create_key(name)
        key, problem = check_created(response, name)
        self._ok(response, problem)
        self.ledger.keys[key.id] = key
        return key

    def set_disabled(self, key: Key, disabled: bool) -> None:
        response = self.client.set_disabled(key, disabled)
        self._ok(response, check_toggled(response, key, disabled))
        key.disabled = disabled

    def edit_note(self, key: Key, purpose: str) -> None:
        response = self.client.edit_note(key, purpose)
        self._ok(response, check_note_saved(response, key, purpose))

    def detail(self, key: Key) -> None:
        response = self.client.key_detail(key)
        self._ok(response, check_detail(response, key))

    def delete(self, key: Key) -> None:
        response = self.client.delete_key(key)
        self._ok(response, check_deleted(response, key))
        del self.ledger.keys[key.id]


_TIMING = re.compile(r'([a-z]+);dur=([0-9.]+)(?:;desc="(\d+) )?')


def server_timing(response: requests.Response | None) -> dict[str, float]:
    """keyadmin's Server-Timing header as {name: ms}, with `db_queries` and `upstream_requests`."""
    found: dict[str, float] = {}
    header = response.headers.get("Server-Timing", "") if response is not None else ""
    for name, ms, count in _TIMING.findall(header):
        found[name] = float(ms)
        if count:
            found[f"{name}_{'queries' if name == 'db' else 'requests'}"] = int(count)
    return found


class Recorder:
    """Wall time of each call, the workers' CPU around it when given their pids, and the
    Server-Timing of the answer when given where to find it."""

    def __init__(
        self,
        pids: list[int] | None = None,
        last_response: Callable[[], requests.Response | None] | None = None,
    ) -> None:
        self.ms: dict[str, list[float]] = {a: [] for a in ACTIONS}
        self.cpu_s = dict.fromkeys(ACTIONS, 0.0)
        self.timings: dict[str, list[dict[str, float]]] = {a: [] for a in ACTIONS}
        self.pids = pids
        self.last_response = last_response

    def __call__(self, action: str, call: Callable[[], object]) -> object:
        cpu_before = cpu_seconds(self.pids) if self.pids else 0.0
        started = time.perf_counter()
        result = call()
        self.ms[action].append((time.perf_counter() - started) * 1000)
        if self.pids:
            self.cpu_s[action] += cpu_seconds(self.pids) - cpu_before
        if self.last_response is not None:
            self.timings[action].append(server_timing(self.last_response()))
        return result


def keyadmin_round(staff: Staff, number: int, timed: Recorder) -> None:
    key = timed("create", lambda: staff.create(f"round-{number}"))
    timed("disable", lambda: staff.set_disabled(key, True))
    timed("enable", lambda: staff.set_disabled(key, False))
    timed("detail", lambda: staff.detail(key))
    timed("list", staff.list)
    timed("delete", lambda: staff.delete(key))


def direct_round(direct: Direct, number: int, timed: Recorder) -> None:
    key_id = timed("create", lambda: direct.create(f"direct-{number}"))
    timed("disable", lambda: direct.disable(key_id))
    timed("enable", lambda: direct.enable(key_id))
    timed("detail", lambda: direct.detail(key_id))
    timed("list", direct.list)
    timed("delete", lambda: direct.delete(key_id))


def one_round(staff: Staff, direct: Direct, number: int, ours: Recorder, floor: Recorder) -> None:
    """Each action once through keyadmin and once directly, on a key made for this round.

    The order alternates, so neither side always runs right after the other.
    """
    if number % 2:
        keyadmin_round(staff, number, ours)
        direct_round(direct, number, floor)
    else:
        direct_round(direct, number, floor)
        keyadmin_round(staff, number, ours)


# --- Phases ---


def measure_latency(staff: Staff, direct: Direct, gunicorn: Gunicorn, samples: int) -> dict:
    """Sequential rounds at the configured upstream latency, keyadmin and direct interleaved.

    The workers' CPU is also read around each keyadmin request: between two requests a worker
    idles for the upstream latency, which makes the same work cost more CPU than back to back.
    """
    for number in range(5):
        one_round(staff, direct, -1 - number, Recorder(), Recorder())
    ours = Recorder(gunicorn.worker_pids(), lambda: staff.last_response)
    floor = Recorder()
    for number in range(samples):
        one_round(staff, direct, number, ours, floor)
    result = {}
    for action in ACTIONS:
        mine, base = ours.ms[action], floor.ms[action]
        result[action] = {
            "keyadmin_p50": statistics.median(mine),
            "keyadmin_p95": percentile(mine, 0.95),
            "direct_p50": statistics.median(base),
            "direct_p95": percentile(base, 0.95),
            "ratio_p50": statistics.median(mine) / statistics.median(base),
            "overhead_p50": statistics.median(mine) - statistics.median(base),
            "server_cpu_ms": ours.cpu_s[action] * 1000 / len(mine),
            "samples": len(mine),
            # For the chart: the distributions, and the median of each Server-Timing phase.
            "keyadmin_ms": [round(ms, 2) for ms in sorted(mine)],
            "direct_ms": [round(ms, 2) for ms in sorted(base)],
            "server_timing_p50": phase_medians(ours.timings[action]),
        }
    return result


def phase_medians(timings: list[dict[str, float]]) -> dict[str, float]:
    names = sorted({name for timing in timings for name in timing})
    return {name: statistics.median(timing.get(name, 0.0) for timing in timings) for name in names}


def measure_first_load(base_url: str, cookies: dict[str, str]) -> dict:
    """The keys page and every stylesheet and script it references, as a browser fetches them."""
    http = plain_session()
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    files = []

    def fetch(url: str) -> str:
        response = http.get(
            url,
            headers={"Cookie": cookie, "Accept-Encoding": "gzip"},
            stream=True,
            timeout=10,
            allow_redirects=False,
        )
        body = response.raw.read(decode_content=False)
        if response.status_code != 200:
            raise BenchError(
                f"first load: {url.split('/')[-1]} answered HTTP {response.status_code}"
            )
        files.append(
            {
                "path": url.removeprefix(base_url),
                "encoding": response.headers.get("Content-Encoding", "identity"),
                "body_bytes": len(body),
                "wire_bytes": wire_bytes(response, body),
            }
        )
        encoding = response.headers.get("Content-Encoding")
        if encoding == "gzip":
            return gzip.decompress(body).decode()
        if encoding:
            raise BenchError(f"unexpected Content-Encoding {encoding}")
        return body.decode()

    page = fetch(base_url + KEYS)
    assets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', page)
    assets += re.findall(r'<script[^>]* src="([^"]+)"', page)
    if len(assets) < 2:
        raise BenchError("first load: the keys page references fewer assets than expected")
    for asset in assets:
        fetch(urljoin(base_url + KEYS, asset))
    total = sum(f["wire_bytes"] for f in files)
    # keyadmin sends HTML uncompressed; what gzip (at the proxy, say) would make of the page:
    page_bytes = page.encode()
    html_gzipped = len(gzip.compress(page_bytes, 6))
    return {
        "total_wire_bytes": total,
        "files": files,
        "html_gzipped_bytes": html_gzipped,
        "total_if_html_gzipped": total - len(page_bytes) + html_gzipped,
    }


def measure_cpu_and_upstream(
    staff: Staff, gunicorn: Gunicorn, emulator: Emulator, rounds: int
) -> dict:
    """At 0 ms latency, back to back: batches of one action, with the workers' CPU and the
    upstream requests counted around each batch. The list runs with the user's BASE_KEYS keys,
    and once more with 20 (the most a user may hold) as `list_20`."""
    batch = MAX_KEYS - BASE_KEYS
    kinds = (*ACTIONS, "list_20", "note_edit")
    routes = {**ROUTES, "list_20": ROUTES["list"]}
    pids = gunicorn.worker_pids()
    cpu = dict.fromkeys(kinds, 0.0)
    count = dict.fromkeys(kinds, 0)
    upstream = {kind: {"total": 0, "route": 0} for kind in kinds}
    answer_bytes: dict[str, list[int]] = {kind: [] for kind in kinds}
    answer_gzipped: dict[str, list[int]] = {kind: [] for kind in kinds}

    def run(kind: str, calls: list[Callable[[], object]]) -> None:
        emulator.reset_stats()
        before = cpu_seconds(pids)
        for call in calls:
            call()
            sent, gzipped = answer_sizes(staff.last_response)
            answer_bytes[kind].append(sent)
            answer_gzipped[kind].append(gzipped)
        cpu[kind] += cpu_seconds(pids) - before
        stats = emulator.stats()
        count[kind] += len(calls)
        upstream[kind]["total"] += stats["total"]
        upstream[kind]["route"] += stats["by_route"][routes[kind]] if kind in routes else 0

    for number in range(rounds):
        names = [f"cpu-{number}-{i}" for i in range(batch)]
        made: list[Key] = []
        run("create", [lambda n=n, made=made: made.append(staff.create(n)) for n in names])
        run("disable", [lambda k=k: staff.set_disabled(k, True) for k in made])
        run("enable", [lambda k=k: staff.set_disabled(k, False) for k in made])
        run("detail", [lambda k=k: staff.detail(k) for k in made])
        run("note_edit", [lambda k=k, n=number: staff.edit_note(k, f"bench {n}") for k in made])
        run("list_20", [staff.list for _ in made])
        run("delete", [lambda k=k: staff.delete(k) for k in made])
        run("list", [staff.list for _ in made])
    return {
        "cpu_ms_per_action": {k: cpu[k] * 1000 / count[k] for k in kinds},
        "upstream_per_action": {k: upstream[k]["total"] / count[k] for k in kinds},
        "upstream_route_per_action": {k: upstream[k]["route"] / count[k] for k in kinds},
        "answer_wire_bytes": {k: round(statistics.median(answer_bytes[k])) for k in kinds},
        "answer_gzipped_bytes": {k: round(statistics.median(answer_gzipped[k])) for k in kinds},
        "actions_per_kind": count["list"],
    }


def answer_sizes(response: requests.Response) -> tuple[int, int]:
    """(bytes on the wire as sent, the body gzipped). keyadmin gzips only the key list itself
    (no secret in it); every other answer goes uncompressed, against BREACH, and nginx in front
    does not compress either (deploy/nginx/keyadmin-front.conf): the goal is about the body."""
    body = response.content
    if response.headers.get("Content-Encoding") == "gzip":
        sent = int(response.headers.get("Content-Length", len(gzip.compress(body, 6))))
        return wire_bytes(response, b"x" * sent), sent
    return wire_bytes(response, body), len(gzip.compress(body, 6))


def measure_act_for(actor: Staff, gunicorn: Gunicorn, emulator: Emulator, rounds: int) -> dict:
    """Starting to act for a customer, back to back at 0 ms: CPU and upstream requests per start.

    Each start is followed (outside the measurement) by the keys page, for the acting binding,
    and by "End now": a start that replaces a connection also revokes it (a second request, by
    design), so every measured start begins with none.
    """
    pids = gunicorn.worker_pids()

    def start() -> requests.Response:
        response = actor.client.act_for_start(APP_KEY, "cus_bench1", "SUP-1")
        if response.status_code != 302 or response.headers.get("Location") != KEYS:
            raise BenchError(f"act-for start: HTTP {response.status_code}, not the keys page")
        return response

    def end() -> None:
        actor.client.load_keys_page()
        if actor.client.act_for_end().status_code != 302:
            raise BenchError("act-for end: not a redirect")

    start()  # replaces the actor's own connection (revoked: two requests), not measured
    end()
    cpu = 0.0
    upstream = 0
    sizes = []
    for _ in range(rounds):
        emulator.reset_stats()
        before = cpu_seconds(pids)
        response = start()
        cpu += cpu_seconds(pids) - before
        upstream += emulator.stats()["total"]
        sizes.append(answer_sizes(response))
        end()
    return {
        "cpu_ms": cpu * 1000 / rounds,
        "upstream": upstream / rounds,
        "answer_wire_bytes": round(statistics.median(size for size, _ in sizes)),
        "answer_gzipped_bytes": round(statistics.median(gzipped for _, gzipped in sizes)),
        "starts": rounds,
    }


def apps_file(workdir: Path, emulator_url: str) -> Path:
    """The bench's one app, with acting for customers on (HS256, the local server's secret)."""
    (workdir / "act-for-key").write_text(ACT_FOR_SECRET)
    app = {
        "key": APP_KEY,
        "name": APP_ID,
        "app_id": APP_ID,
        "base_url": emulator_url,
        "allowed_hosts": ["127.0.0.1"],
        "environment": "development",
        "act_for_enabled": True,
        "customer_pattern": "^cus_[A-Za-z0-9]+$",
        "ticket_pattern": "^SUP-[0-9]+$",
        "max_act_for_minutes": 30,
        "jwt_algorithm": "HS256",
        "jwt_hs256_secret_file": "act-for-key",
    }
    path = workdir / "apps.json"
    path.write_text(json.dumps({"apps": [app]}))
    return path


def measure_throughput(
    clients: list[Staff], gunicorn: Gunicorn, emulator: Emulator, seconds: float
) -> dict:
    """Requests per second with one keep-alive client per thread, for a fixed duration."""
    pids = gunicorn.worker_pids()
    keys = [staff.create(f"tp-{i}") for i, staff in enumerate(clients)]
    results = {}

    def drive(kind: str, index: int, deadline: float) -> tuple[int, int]:
        staff, key = clients[index], keys[index]
        done = failed = 0
        while time.monotonic() < deadline:
            if kind == "list":
                response = staff.client.list_keys()
                good = response.status_code == 200 and response.content[:100].lstrip().startswith(
                    b"<section"
                )
            else:
                disabled = not key.disabled
                response = staff.client.set_disabled(key, disabled)
                good = response.status_code == 200 and response.content[:100].lstrip().startswith(
                    b"<tr"
                )
                if good:
                    key.disabled = disabled
            done += 1
            failed += not good
        return done, failed

    for kind in ("list", "enable/disable"):
        emulator.reset_stats()
        cpu_before = cpu_seconds(pids)
        emulator_before = cpu_seconds([emulator.process.pid])
        own_before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.monotonic()
        deadline = started + seconds
        with ThreadPoolExecutor(len(clients)) as pool:
            outcomes = list(
                pool.map(
                    drive, [kind] * len(clients), range(len(clients)), [deadline] * len(clients)
                )
            )
        elapsed = time.monotonic() - started
        own_after = resource.getrusage(resource.RUSAGE_SELF)
        done = sum(d for d, _ in outcomes)
        failed = sum(f for _, f in outcomes)
        if failed:
            raise BenchError(f"throughput {kind}: {failed} of {done} answers were wrong")
        stats = emulator.stats()
        worker_cpu = cpu_seconds(pids) - cpu_before
        results[kind] = {
            "requests": done,
            "seconds": elapsed,
            "rps": done / elapsed,
            # What one fully available core would serve: less skewed by other work than rps.
            "rps_per_worker_core": done / worker_cpu if worker_cpu else 0.0,
            "upstream_per_request": stats["total"] / done,
            "cpu_share_s": {
                "keyadmin_workers": worker_cpu,
                "appservices_server": cpu_seconds([emulator.process.pid]) - emulator_before,
                "load_client": (own_after.ru_utime + own_after.ru_stime)
                - (own_before.ru_utime + own_before.ru_stime),
            },
        }
    for staff, key in zip(clients, keys, strict=True):
        staff.delete(key)
    return results


# --- Report ---


def verdicts(results: dict) -> list[dict]:
    """Every goal of issue 14 against its figure: met or missed, and by how much."""
    found = []

    def judge(goal: str, measured: float, limit: float, unit: str, *, at_least: bool = False):
        met = measured >= limit if at_least else measured <= limit
        gap = (limit - measured) if at_least else (measured - limit)
        found.append(
            {
                "goal": goal,
                "measured": round(measured, 3),
                "limit": limit,
                "unit": unit,
                "met": met,
                "gap": round(max(gap, 0.0), 3),
            }
        )

    for kind, goal in ACTION_GOALS.items():
        if kind not in results["upstream_per_action"]:
            continue
        judge(
            f"{goal.label}: upstream requests",
            results["upstream_per_action"][kind],
            goal.upstream,
            "req",
        )
        if goal.upstream and results["upstream_per_action"][kind] < goal.upstream:
            found[-1]["met"] = False  # exactly: fewer means the action did not happen
        if goal.cpu_ms is not None:
            judge(
                f"{goal.label}: server CPU", results["cpu_ms_per_action"][kind], goal.cpu_ms, "ms"
            )
    for action, row in results["latency"].items():
        judge(f"{action}: p50 ratio at 50 ms", row["ratio_p50"], GOALS["p50_ratio"], "x")
    for kind, rps in GOALS["throughput_rps"].items():
        judge(f"throughput {kind}", results["throughput"][kind]["rps"], rps, "req/s", at_least=True)
    judge(
        "first load of the keys page, gzipped",
        results["first_load"]["total_wire_bytes"] / 1024,
        GOALS["first_load_kb"],
        "KB",
    )
    for kind, size in results["answer_gzipped_bytes"].items():
        judge(f"{kind} answer, gzipped", size / 1024, GOALS["answer_kb_gzipped"], "KB")
    for worker in results["memory"]:
        judge(
            f"memory of worker {worker['pid']} (VmRSS)",
            worker["VmRSS"] / 1024,
            GOALS["rss_mb_per_worker"],
            "MB",
        )
    return found


def table(results: dict) -> str:
    lat, cpu, up = results["latency"], results["cpu_ms_per_action"], results["upstream_per_action"]
    config, gunicorn = results["config"], results["gunicorn"]
    out = [
        f"keyadmin bench · {results['when']} · {results['machine']['cpus']} CPUs · gunicorn "
        f"{gunicorn['worker_class']}, {gunicorn['workers']} workers x {gunicorn['threads']} threads"
        f" · the user holds {config['base_keys']} keys",
        f"machine load average (1 min) {results['machine']['load_avg_1min']['start']:.1f} at start,"
        f" {results['machine']['load_avg_1min']['end']:.1f} at end (the bench itself adds ~2;"
        f" other work skews every figure)",
        "",
        f"Latency at {config['latency_ms']} ms upstream, one request at a time "
        f"({lat['list']['samples']} of each; ms); keyadmin's share from Server-Timing (p50)",
        f"{'action':<9}{'keyadmin p50':>13}{'p95':>7}{'direct p50':>12}{'p95':>7}"
        f"{'ratio p50':>11}{'+ms p50':>9}{'CPU ms':>8}{'app':>7}{'upstream':>9}{'db':>6}"
        f"{'render':>7}",
    ]
    for action in ACTIONS:
        row = lat[action]
        phases = row["server_timing_p50"]
        out.append(
            f"{action:<9}{row['keyadmin_p50']:>13.1f}{row['keyadmin_p95']:>7.1f}"
            f"{row['direct_p50']:>12.1f}{row['direct_p95']:>7.1f}{row['ratio_p50']:>11.3f}"
            f"{row['overhead_p50']:>9.1f}{row['server_cpu_ms']:>8.1f}"
            f"{phases.get('app', 0):>7.1f}{phases.get('upstream', 0):>9.1f}"
            f"{phases.get('db', 0):>6.1f}{phases.get('render', 0):>7.1f}"
        )
    out += [
        "",
        f"Per action, back to back at 0 ms ({results['actions_per_kind']} of each)",
        f"{'action':<15}{'upstream req':>13}{'server CPU ms':>15}{'answer bytes':>14}"
        f"{'gzipped':>9}",
    ]
    for kind in ACTION_GOALS:
        if kind not in up:
            continue
        out.append(
            f"{ACTION_GOALS[kind].label:<15}{up[kind]:>13.2f}{cpu[kind]:>15.2f}"
            f"{results['answer_wire_bytes'][kind]:>14,}{results['answer_gzipped_bytes'][kind]:>9,}"
        )
    first = results["first_load"]
    out += ["", "First load of the keys page, Accept-Encoding: gzip (status line + headers + body)"]
    for item in first["files"]:
        out.append(f"  {item['path']:<50}{item['encoding']:>9}{item['wire_bytes']:>9,} B")
    total = first["total_wire_bytes"]
    out.append(f"  {'total':<59}{total:>9,} B = {total / 1024:.1f} KB")
    out += ["", "Memory per worker, after the run"]
    for worker in results["memory"]:
        out.append(
            f"  worker {worker['pid']}: VmRSS {worker['VmRSS'] / 1024:.1f} MB, peak "
            f"{worker['VmHWM'] / 1024:.1f} MB, Pss {worker.get('Pss', 0) / 1024:.1f} MB"
        )
    out += ["", f"Throughput at 0 ms latency, {config['concurrency']} keep-alive clients"]
    for kind, row in results["throughput"].items():
        share = row["cpu_share_s"]
        out.append(
            f"  {kind:<15}{row['rps']:>5.0f} req/s, {row['rps_per_worker_core']:.0f} per worker"
            f" CPU-second  ({row['requests']} in {row['seconds']:.1f} s,"
            f" {row['upstream_per_request']:.2f} upstream/req; CPU s: keyadmin "
            f"{share['keyadmin_workers']:.1f}, App Services server "
            f"{share['appservices_server']:.1f}, load client {share['load_client']:.1f})"
        )
    floor, ours = results.get("floor"), results["latency"]["list"]
    if floor:
        out += [
            "",
            "The stack's floor: bench/floor_app.py, the same gunicorn configuration (list of "
            f"{config['base_keys']} keys)",
            f"  {floor['what']}",
            f"  p50 {floor['floor_p50']:.1f} ms against {floor['direct_p50']:.1f} ms direct: "
            f"{floor['ratio_p50']:.2f} x (+{floor['overhead_p50']:.1f} ms); keyadmin's list "
            f"{ours['ratio_p50']:.2f} x (+{ours['overhead_p50']:.1f} ms)",
            f"  workers' CPU per request back to back {floor['cpu_ms_per_request']:.2f} ms; "
            f"keyadmin's list {cpu['list']:.2f} ms",
        ]
    marks = results["verdicts"]
    missed = [v for v in marks if not v["met"]]
    out += ["", f"Goals: {len(marks) - len(missed)} of {len(marks)} met"]
    for v in marks:
        verdict = "met   " if v["met"] else "MISSED"
        gap = "" if v["met"] else f"  (over by {v['gap']:g} {v['unit']})"
        if not v["met"] and v["unit"] == "req/s":
            gap = f"  (short by {v['gap']:g} req/s)"
        out.append(
            f"  {verdict} {v['goal']:<44}{v['measured']:>10.2f} {v['unit']:<5} "
            f"goal {'>=' if v['unit'] == 'req/s' else '<='} {v['limit']:g}{gap}"
        )
    out += ["", f"Whole run {results['elapsed_s']:.0f} s"]
    return "\n".join(out)


# --- Main ---


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=100, help="latency samples per action")
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--cpu-rounds", type=int, default=7, help="rounds of 15 of each action")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per throughput run")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    parser.add_argument("--chart", type=Path, default=ROOT / "docs" / "bench.svg")
    parser.add_argument(
        "--gunicorn-arg", action="append", default=[], help="extra gunicorn argument (experiments)"
    )
    args = parser.parse_args(argv)
    if not (1 <= args.samples <= 1000 and 1 <= args.cpu_rounds <= 50):
        parser.error("samples 1-1000, cpu-rounds 1-50")
    if not (0.5 <= args.duration <= 60 and 1 <= args.concurrency <= 32):
        parser.error("duration 0.5-60 s, concurrency 1-32")

    began = time.monotonic()
    load_at_start = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="keyadmin-bench-"))
    emulator = gunicorn = None
    clients: list[StaffClient] = []
    try:
        emulator = Emulator(
            APP_ID,
            workdir / "appservices.sqlite3",
            "--latency-ms",
            str(args.latency_ms),
            "--custom-token-secret",
            ACT_FOR_SECRET,
            "--custom-token-metadata",
            "name=name",
            stdout=subprocess.DEVNULL,
        ).start()
        env = keyadmin_env(
            workdir,
            emulator.url,
            APP_ID,
            KEYADMIN_APPS_FILE=str(apps_file(workdir, emulator.url)),
            # The bench starts acting a hundred times in a minute: the throttle is still checked
            # on each start (its cost is measured), its limit is raised above the bench's count.
            KEYADMIN_ACT_FOR_STAFF_LIMIT="100000",
            KEYADMIN_ACT_FOR_APP_LIMIT="100000",
        )
        prepare_keyadmin(env)
        session_keys = make_staff_sessions(env, 1 + args.concurrency, workdir)
        session_keys += make_staff_sessions(
            env, 1, workdir, roles=("viewer", "operator", "act_for")
        )
        gunicorn = Gunicorn(env, workdir / "gunicorn.log", extra_args=tuple(args.gunicorn_arg))
        gunicorn.start()
        print(
            f"keyadmin under gunicorn at {gunicorn.url}; local App Services server at "
            f"{emulator.url} ({args.latency_ms} ms)",
            flush=True,
        )

        def staff_for(index: int) -> Staff:
            email = f"bench-{index}@example.com"
            password = secrets.token_urlsafe(12)
            emulator.create_user(email, password)
            client = StaffClient(gunicorn.url, session_keys[index])
            clients.append(client)
            client.sign_in_to_appservices(email, password)
            return Staff(client, email, password)

        main_staff = staff_for(0)
        for number in range(BASE_KEYS):
            main_staff.create(f"base-{number}")
        direct = Direct(emulator.url, APP_ID, main_staff.email, main_staff.password)

        first_load = measure_first_load(gunicorn.url, dict(main_staff.client.cookies))
        print("measuring latency ...", flush=True)
        latency = measure_latency(main_staff, direct, gunicorn, args.samples)

        emulator.set_latency(0)
        print("measuring CPU and upstream requests per action ...", flush=True)
        per_action = measure_cpu_and_upstream(main_staff, gunicorn, emulator, args.cpu_rounds)
        actor = staff_for(1 + args.concurrency)
        act_for = measure_act_for(actor, gunicorn, emulator, 15 * args.cpu_rounds)
        per_action["cpu_ms_per_action"]["act_for_start"] = act_for["cpu_ms"]
        per_action["upstream_per_action"]["act_for_start"] = act_for["upstream"]
        per_action["answer_wire_bytes"]["act_for_start"] = act_for["answer_wire_bytes"]
        per_action["answer_gzipped_bytes"]["act_for_start"] = act_for["answer_gzipped_bytes"]
        with ThreadPoolExecutor(args.concurrency) as pool:
            others = list(pool.map(staff_for, range(1, 1 + args.concurrency)))
        print("measuring throughput ...", flush=True)
        throughput = measure_throughput(others, gunicorn, emulator, args.duration)
        print("measuring the stack's floor ...", flush=True)
        floor = measure_floor(
            env,
            workdir,
            emulator,
            APP_ID,
            direct.bearer,
            direct.list,
            latency_ms=args.latency_ms,
            samples=args.samples,
            back_to_back=15 * args.cpu_rounds,
        )

        if emulator.keys_of(main_staff.email) != main_staff.ledger.expected():
            raise BenchError("the local server's keys differ from the bench's bookkeeping")
        memory = [{"pid": pid, **memory_kib(pid)} for pid in gunicorn.worker_pids()]
        config = gunicorn_config(env, tuple(args.gunicorn_arg))
        config["workers_running"] = len(gunicorn.worker_pids())
        results = {
            "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": "make bench",
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(terse=True),
                # Other work on the machine skews every figure: "start" is what ran before the
                # bench (< 1 on a quiet box); "end" includes the bench's own processes (about 2).
                "load_avg_1min": {"start": load_at_start, "end": os.getloadavg()[0]},
            },
            "gunicorn": config,
            "config": {
                "latency_ms": args.latency_ms,
                "samples": args.samples,
                "base_keys": BASE_KEYS,
                "concurrency": args.concurrency,
                "duration_s": args.duration,
            },
            "goals": {"per_action": {k: asdict(v) for k, v in ACTION_GOALS.items()}, **GOALS},
            "latency": latency,
            "first_load": first_load,
            "memory": memory,
            "throughput": throughput,
            "floor": floor,
            **per_action,
        }
        results["verdicts"] = verdicts(results)
        results["elapsed_s"] = time.monotonic() - began
        print()
        print(table(results))
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        chart.write(results, args.chart)
        written = (args.out, args.chart)
        shown = [p.relative_to(ROOT) if p.is_relative_to(ROOT) else p for p in written]
        print(f"\nwritten to {shown[0]} and {shown[1]}")
        return 0
    except BenchError as error:
        print(f"bench failed: {error}", file=sys.stderr)
        if gunicorn is not None:
            print(gunicorn.log_tail(), file=sys.stderr)
        return 1
    finally:
        for client in clients:
            client.close()  # idle keep-alive connections would hold up gunicorn's graceful stop
        if gunicorn is not None:
            gunicorn.stop()
        if emulator is not None:
            emulator.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def gunicorn_config(env: dict[str, str], extra_args: tuple[str, ...]) -> dict:
    """The settings gunicorn resolves from gunicorn.conf.py (and any experiment arguments)."""
    printed = subprocess.run(  # noqa: S603 - fixed arguments
        [
            PYTHON,
            "-m",
            "gunicorn",
            "-c",
            "gunicorn.conf.py",
            *extra_args,
            "--print-config",
            "keyadmin.wsgi",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    wanted = ("worker_class", "workers", "threads", "preload_app", "keepalive", "timeout")
    found = {}
    for line in printed.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() in wanted:
            found[name.strip()] = value.strip()
    return found


if __name__ == "__main__":
    sys.exit(main())
