"""`make bench`'s floor: bench/floor_app.py under the same gunicorn configuration as keyadmin.

Measured as keyadmin's list is: the p50 at the bench's upstream latency against the same App
Services request made directly, and the workers' CPU per request back to back at 0 ms.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from pathlib import Path

import requests

from bench.harness import CLIENT_API, PYTHON, ROOT, Gunicorn, cpu_seconds, plain_session

SESSION_COOKIE = "sessionid"  # Django's default: the floor's own settings


def floor_env(base_env: dict[str, str], workdir: Path, upstream: str, bearer: str) -> dict:
    token_file = workdir / "floor-bearer"
    token_file.write_text(bearer)
    token_file.chmod(0o600)
    env = {
        name: value
        for name, value in base_env.items()
        if not name.startswith(("KEYADMIN_", "APPSERVICES_", "DJANGO_"))
    }
    env.update(
        FLOOR_DB=str(workdir / "floor.sqlite3"),
        FLOOR_UPSTREAM=upstream,
        FLOOR_BEARER_FILE=str(token_file),
    )
    return env


def measure_floor(
    base_env: dict[str, str],
    workdir: Path,
    emulator,
    app_id: str,
    bearer: str,
    direct_list,
    *,
    latency_ms: int,
    samples: int,
    back_to_back: int,
) -> dict:
    """p50 at `latency_ms` (interleaved with `direct_list()`), then CPU per request at 0 ms."""
    upstream = f"{emulator.url}{CLIENT_API}/auth/api_keys"
    env = floor_env(base_env, workdir, upstream, bearer)
    session_key = subprocess.run(  # noqa: S603 - this module's own setup, fixed arguments
        [PYTHON, "-m", "bench.floor_app", "setup"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.strip()
    gunicorn = Gunicorn(
        {**env, "DJANGO_SETTINGS_MODULE": "bench.floor_app"},
        workdir / "floor-gunicorn.log",
        app="bench.floor_app:application",
    )
    http = plain_session()
    http.cookies.set(SESSION_COOKIE, session_key)

    def one() -> float:
        started = time.perf_counter()
        answer = http.get(f"{gunicorn.url}/list/", timeout=10)
        if answer.status_code != 200 or not answer.content.startswith(b"<tr"):
            raise RuntimeError(f"the floor app answered HTTP {answer.status_code}")
        return (time.perf_counter() - started) * 1000

    def direct() -> float:
        started = time.perf_counter()
        direct_list()
        return (time.perf_counter() - started) * 1000

    try:
        gunicorn.start()
        emulator.set_latency(latency_ms)
        for _ in range(5):
            one(), direct()
        floor_ms, direct_ms = [], []
        for _ in range(samples):
            floor_ms.append(one())
            direct_ms.append(direct())
        emulator.set_latency(0)
        for _ in range(20):
            one()
        pids = gunicorn.worker_pids()
        before = cpu_seconds(pids)
        for _ in range(back_to_back):
            one()
        cpu_ms = (cpu_seconds(pids) - before) * 1000 / back_to_back
    except requests.RequestException as error:
        raise RuntimeError(f"the floor app: {type(error).__name__}") from None
    finally:
        http.close()
        gunicorn.stop()
        emulator.set_latency(0)
        for leftover in ("floor-bearer",):
            (workdir / leftover).unlink(missing_ok=True)
    floor_p50, direct_p50 = statistics.median(floor_ms), statistics.median(direct_ms)
    return {
        "what": "one Django view: a DB session read, one pooled requests call, a short render",
        "floor_p50": floor_p50,
        "direct_p50": direct_p50,
        "ratio_p50": floor_p50 / direct_p50,
        "overhead_p50": floor_p50 - direct_p50,
        "cpu_ms_per_request": cpu_ms,
        "samples": samples,
        "back_to_back": back_to_back,
    }
