"""Where one action's server CPU goes: py-spy on a gunicorn worker while the action repeats.

    python -m bench.profile [--action toggle|list|list20|create|detail|delete] [--seconds 15]
                            [--out profile.txt] [--top 40]

Starts the same keyadmin under gunicorn as `make bench` (one worker, so every request lands in
the profiled process) on the local App Services server at 0 ms latency, repeats the action from
one client for `--seconds`, and samples the worker with py-spy (`pip install py-spy`; needs
ptrace, i.e. root or kernel.yama.ptrace_scope=0). Prints, per function, the share of samples it
was on the stack (inclusive) and at the top (own time), and writes py-spy's collapsed stacks to
`--out` for a flame graph (e.g. speedscope.app). The bench's figures come from `make bench`; this
says why they are what they are.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from bench.harness import Emulator, Gunicorn, StaffClient, keyadmin_env, prepare_keyadmin
from bench.harness import make_staff_sessions as staff_sessions
from bench.run import ACT_FOR_SECRET, APP_ID, Staff, apps_file

ACTIONS = ("toggle", "list", "list20", "create", "detail", "delete")


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_ticks(pids: list[int]) -> tuple[int, int]:
    """utime and stime of all these processes, in clock ticks."""
    user = system = 0
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        user, system = user + int(fields[11]), system + int(fields[12])
    return user, system


def repeat(staff: Staff, action: str, stop: threading.Event, made_so_far: list[int]) -> int:
    """Run `action` until `stop`, counting in `made_so_far[0]`; the number of actions made."""
    keys = [staff.create(f"profile-{n}") for n in range(5 if action != "list20" else 20)]
    done = 0
    while not stop.is_set():
        if action == "toggle":
            key = keys[done % len(keys)]
            staff.set_disabled(key, not key.disabled)
        elif action in ("list", "list20"):
            staff.list()
        elif action == "detail":
            staff.detail(keys[done % len(keys)])
        elif action in ("create", "delete"):
            key = staff.create(f"p-{secrets.token_hex(4)}")
            staff.delete(key)  # keeps the count under 20; both halves are in the profile
        done += 1
        made_so_far[0] = done
    return done


def summarise(collapsed: Path, top: int) -> str:
    """Inclusive and own shares per function from py-spy's collapsed ("raw") output."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame.rsplit(" (", 1)[0] + " " + _where(frame) for frame in stack.split(";")]
        if any("socket.accept" in frame or "selectors.py" in frame for frame in frames[-2:]):
            continue  # an idle thread waiting for work: not the action's cost
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    lines = [f"{total} samples of the thread holding the GIL"]
    lines.append("\ninclusive (on the stack)")
    lines += [f"{100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(top)]
    lines.append("\nown (at the top)")
    lines += [f"{100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(top)]
    return "\n".join(lines)


def _where(frame: str) -> str:
    """'(module/file.py:line)' shortened to 'file.py' (py-spy's line numbers split one function)."""
    inside = frame.rsplit(" (", 1)[-1].rstrip(")")
    path = inside.rsplit(":", 1)[0]
    return "(" + "/".join(path.split("/")[-2:]) + ")"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--action", choices=ACTIONS, default="toggle")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--out", type=Path, default=Path("profile.txt"))
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--workers", type=int, default=1, help="the first one is sampled")
    parser.add_argument(
        "--no-spy", action="store_true", help="only the CPU per action, without py-spy's sampling"
    )
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        parser.error("py-spy is not installed: pip install py-spy")

    workdir = Path(tempfile.mkdtemp(prefix="keyadmin-profile-"))
    emulator = gunicorn = None
    client = None
    try:
        emulator = Emulator(
            APP_ID,
            workdir / "appservices.sqlite3",
            "--custom-token-secret",
            ACT_FOR_SECRET,
            stdout=subprocess.DEVNULL,
        ).start()
        # The bench's own configuration (its apps file), so the figures compare.
        env = keyadmin_env(
            workdir, emulator.url, APP_ID, KEYADMIN_APPS_FILE=str(apps_file(workdir, emulator.url))
        )
        prepare_keyadmin(env)
        (session_key,) = staff_sessions(env, 1, workdir)
        gunicorn = Gunicorn(env, workdir / "gunicorn.log", workers=args.workers).start()
        email, password = "profile@example.com", secrets.token_urlsafe(12)
        emulator.create_user(email, password)
        client = StaffClient(gunicorn.url, session_key)
        client.sign_in_to_appservices(email, password)
        staff = Staff(client, email, password)

        stop = threading.Event()
        made_so_far = [0]
        worker = threading.Thread(target=repeat, args=(staff, args.action, stop, made_so_far))
        worker.start()
        time.sleep(1)  # warm: the keys are made, caches and connections are filled
        pids = gunicorn.worker_pids()
        pid = pids[0]
        before, made_before = _cpu_ticks(pids), made_so_far[0]
        if args.no_spy:
            time.sleep(args.seconds)
        else:
            subprocess.run(  # noqa: S603 - py-spy from this venv, fixed arguments
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(pid),
                    "--duration",
                    str(int(args.seconds)),
                    "--rate",
                    "500",
                    "--format",
                    "raw",
                    "--output",
                    str(args.out),
                    "--nonblocking",
                    # Only the thread holding the GIL: the others' samples are waits for it,
                    # which would be charged to whatever call they return from.
                    "--gil",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        after, made_after = _cpu_ticks(pids), made_so_far[0]
        stop.set()
        worker.join()
        actions = max(1, made_after - made_before)
        user, system = (
            (a - b) * 1000 / _TICKS / actions for a, b in zip(after, before, strict=True)
        )
        print(
            f"{args.action}: {actions} actions while sampled; workers' CPU per action "
            f"{user:.2f} ms user + {system:.2f} ms system (py-spy's own sampling included)"
        )
        if not args.no_spy:
            print(summarise(args.out, args.top))
        return 0
    finally:
        if client is not None:
            client.close()
        if gunicorn is not None:
            gunicorn.stop()
        if emulator is not None:
            emulator.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
