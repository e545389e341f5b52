"""How many slow clients keyadmin survives: bare gunicorn against nginx in front of it.

    python -m bench.slow_clients [--counts 4,8,...,200] [--workers 2] [--threads 8]

For each count, opens that many connections that send a request's headers a byte every 0.5 s
and never finish them, waits a second, then asks /healthz three times with a 2 s timeout;
reports whether it answered, first straight to gunicorn (the committed gunicorn.conf.py), then
through nginx with the committed deploy/nginx/keyadmin-front.conf. The slow clients are closed
between two counts. Figures, not pass/fail (tests/system/test_slow_clients.py asserts the
behaviour). Everything runs on 127.0.0.1 and is stopped on the way out; at most 200 connections
and about two minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from pathlib import Path

import requests

from bench.front import Nginx, SlowClients
from bench.harness import Gunicorn, keyadmin_env, plain_session, prepare_keyadmin

COUNTS = (4, 8, 12, 16, 20, 24, 28, 32, 34, 40, 48, 64, 100, 150, 200)


def healthz_answers(http: requests.Session, url: str, tries: int = 3) -> int:
    """How many of `tries` /healthz requests answered 200 within 2 s."""
    answered = 0
    for _ in range(tries):
        with contextlib.suppress(requests.RequestException):
            answered += http.get(url + "/healthz", timeout=(2, 2)).status_code == 200
    return answered


def recovered(http: requests.Session, url: str, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if healthz_answers(http, url, tries=1):
            return True
    return False


def survey(name: str, url: str, counts: list[int]) -> None:
    port = int(url.rsplit(":", 1)[1])
    print(f"\n{name} ({url})")
    print("  slow clients   /healthz answered   slow clients still open")
    for count in counts:
        http = plain_session()
        with SlowClients(port, count, seconds=20) as slow:
            time.sleep(1)
            answered = healthz_answers(http, url)
            print(f"  {count:12d}   {answered}/3 within 2 s      {slow.still_open():4d}")
        http.close()
        if not recovered(plain_session(), url):
            print("  (did not answer again within 30 s of the slow clients going; stopping)")
            return
        if not answered:
            return  # the limit is found; more clients only take longer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default=",".join(map(str, COUNTS)))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    options = parser.parse_args()
    counts = [min(int(count), 200) for count in options.counts.split(",")]

    with tempfile.TemporaryDirectory(prefix="keyadmin-slow-") as tmp:
        workdir = Path(tmp)
        env = keyadmin_env(workdir, "http://127.0.0.1:9", os.environ.get("APP_ID", "bench-app"))
        env["KEYADMIN_THREADS"] = str(options.threads)
        prepare_keyadmin(env)
        gunicorn = Gunicorn(env=env, log_path=workdir / "gunicorn.log", workers=options.workers)
        with gunicorn:
            print(f"gunicorn.conf.py: {options.workers} workers x {options.threads} threads")
            survey("bare gunicorn", gunicorn.url, counts)
            with Nginx(workdir / "nginx", gunicorn.url.removeprefix("http://")) as nginx:
                survey("nginx in front (deploy/nginx/keyadmin-front.conf)", nginx.url, counts)


if __name__ == "__main__":
    main()
