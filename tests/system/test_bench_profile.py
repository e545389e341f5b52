"""bench/profile.py's reading of py-spy's collapsed stacks: what it charges to whom."""

from __future__ import annotations

from bench.profile import summarise

SERVING = "_bootstrap (threading.py:1002);handle (gunicorn/workers/gthread.py:10)"
WAITING = "_bootstrap (threading.py:1002);run (gunicorn/workers/gthread.py:400)"
STACKS = "\n".join(
    [
        f"{SERVING};view (keyadmin/keys/views.py:20) 30",
        f"{SERVING};view (keyadmin/keys/views.py:21);render (django/template/base.py:5) 10",
        f"{WAITING};select (/usr/lib/python3.11/selectors.py:468) 60",
    ]
)


def test_idle_waits_are_left_out_and_each_function_is_charged_once_per_sample(tmp_path):
    collapsed = tmp_path / "stacks.txt"
    collapsed.write_text(STACKS)

    summary = summarise(collapsed, top=10)

    assert summary.startswith("40 samples")  # the 60 in selectors.select are a thread waiting
    inclusive, own = summary.split("\nown (at the top)\n")
    # Two lines of one function (py-spy splits by line) are one function.
    assert "100.0%  view (keys/views.py)" in inclusive
    assert " 25.0%  render (template/base.py)" in inclusive
    assert " 75.0%  view (keys/views.py)" in own
    assert "select" not in summary
