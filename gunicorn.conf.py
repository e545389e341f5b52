"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py keyadmin.wsgi`.

Every keyadmin action waits on one App Services request, so a worker mostly waits on the
network. Threaded workers (`gthread`) serve other requests meanwhile: measured at 50 ms upstream
latency with 16 clients on 2 cores, two sync workers served 31 requests per second (one request
per worker at a time), two gthread workers of 8 threads 150 to 200 (README "Reliability and
performance"; `make bench` measures this file).

Environment (all optional):
    KEYADMIN_BIND        address(es) to listen on, comma-separated (default 127.0.0.1:8000);
                         keep it on loopback, reachable only through nginx (below)
    KEYADMIN_WORKERS     worker processes (default 2; about one per core)
    KEYADMIN_THREADS     threads per worker (default 8; more if App Services is slower to answer)
    KEYADMIN_ACCESS_LOG  access log file, "-" for stderr (default: none)
    PROMETHEUS_MULTIPROC_DIR  where workers keep their metrics (default: a new temporary directory
                         per start); emptied of earlier metrics at start, one per instance

Only ever behind nginx with deploy/nginx/keyadmin-front.conf (docs/deploy.md section 6). A
gthread worker's thread reads a request until it is whole, with no deadline, and no setting here
can give it one (`timeout` is the worker's heartbeat, `keepalive` applies between requests and
before a first byte, `limit_request_*` are sizes): `workers x threads` clients sending their
headers a byte at a time stop the instance (measured for 2 x 8: some /healthz requests
unanswered from 12, none answered from 16 or 17; `python -m bench.slow_clients`). nginx reads
every request whole, under deadlines, before it opens a connection here, and takes every answer
at once.
"""

import gc
import os
import shutil
import tempfile
from pathlib import Path


def _positive_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise SystemExit(f"{name} must be a whole number of 1 or more, not {value!r}")
    return int(value)


bind = [address.strip() for address in os.environ.get("KEYADMIN_BIND", "127.0.0.1:8000").split(",")]
workers = _positive_int("KEYADMIN_WORKERS", 2)
worker_class = "gthread"
threads = _positive_int("KEYADMIN_THREADS", 8)

# A gthread worker accepts every connection it can (default 1000) and queues requests behind its
# own busy threads, even while the other worker is idle: measured, one worker ended up with most
# keep-alive connections and its GIL became the bottleneck. With room for `threads` idle
# keep-alive connections beyond the busy ones, a loaded worker closes surplus connections after
# answering and stops accepting; clients reconnect to whichever worker is free. Under 50
# concurrent staff this halved the median latency. Assumes nginx in front: it holds the
# browsers' idle and slow connections and opens one here per whole request.
worker_connections = 2 * threads

# A request can wait on App Services for up to connect 3.05 s + read 10 s, twice for an idempotent
# call retried after a dropped connection. gthread's heartbeat does not wait for requests to end,
# so this only catches a worker whose event loop is stuck.
timeout = 30
graceful_timeout = 20  # in-flight key actions finish on deploy
# Idle time allowed on a connection between requests (gthread also gives a new connection this
# long for its first byte, after 5 s waiting in a thread). The committed nginx front opens one
# connection per request (no keep-alive to gunicorn): behind it this matters only to health
# probes that come straight here.
keepalive = 5

# Load Django once in the master: workers share its pages copy-on-write (measured: 85 MB Pss for
# master + 2 workers, against 103 MB without) and boot fast. Nothing opens a database connection
# or socket at import time, so nothing is shared across the fork. New code needs a restart (not
# HUP), as with any preloaded app.
preload_app = True

# Access lines would carry key ids in paths; off unless asked for. Errors go to stderr.
accesslog = os.environ.get("KEYADMIN_ACCESS_LOG") or None
errorlog = "-"
loglevel = "info"

# gunicorn >= 25.1 otherwise opens a control socket at one fixed path per user
# ($XDG_RUNTIME_DIR or ~/.gunicorn/gunicorn.ctl): a second instance on the host would clash.
control_socket_disable = True

# X-Forwarded-Proto (https from the TLS proxy) is trusted from gunicorn's default, loopback only,
# or from the addresses in gunicorn's own FORWARDED_ALLOW_IPS variable (docs/deploy.md).

# Prometheus metrics (keyadmin/metrics.py): each worker counts in its own files in this directory
# and /metrics adds them all up, so a scrape answered by either worker sees both. prometheus_client
# picks its file-backed mode when it is first imported, which preload_app does in the master after
# this file is read: the variable must be set here, not in a hook. Counts from an earlier start
# must not be added to this one's, nor two instances' to each other's: a fresh directory per start
# unless one is given (then emptied of earlier metrics in on_starting).
_MADE_METRICS_DIR = "keyadmin-metrics-"
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=_MADE_METRICS_DIR)


def on_starting(server):
    metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    metrics_dir.mkdir(parents=True, exist_ok=True)
    # Only prometheus_client's own files: the directory given may hold something else too.
    for leftover in metrics_dir.glob("*.db"):
        leftover.unlink()


def pre_fork(server, worker):
    # Everything the preloaded master holds (Django, the URLconf, templates, translations: about
    # 70,000 objects) lives as long as the worker: moved out of the collector's generations, a
    # worker's collections no longer walk it, and no longer write to those pages, which then stay
    # shared with the master. Measured under back-to-back toggles (python -m bench.profile,
    # gc.callbacks): collection took 0.15 ms per toggle and 0.24 ms per list of 5 keys before, 0.09
    # and 0.16 ms after.
    gc.freeze()


def child_exit(server, worker):
    # A dead worker's counters still count (requests it answered happened); its live gauges not.
    # Imported here: at the top it would come before the variable above is set.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    # Told apart by name, not by a flag: a HUP reads this file again, with the variable set.
    metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    made_here = metrics_dir.parent == Path(tempfile.gettempdir())
    if made_here and metrics_dir.name.startswith(_MADE_METRICS_DIR):
        shutil.rmtree(metrics_dir, ignore_errors=True)
