"""The bench's picture: `make bench` writes it to docs/bench.svg (README shows it).

Three panels from one run's results (bench/results.json):
  1. the latency of each action at 50 ms upstream, through keyadmin and direct: p5-p95 line,
     p25-p75 box, p50 tick;
  2. where keyadmin's p50 goes, from Server-Timing: the upstream request as keyadmin saw it,
     database, template rendering, the rest of keyadmin, and what lies outside keyadmin's own
     `app` figure (gunicorn, the sockets, the client);
  3. the workers' CPU per action back to back, against its goal and against the stack's floor
     (bench/floor_app.py: one bare Django view with a session and one requests call).

Plain SVG written here, no plotting library.

    python -m bench.chart [bench/results.json] [docs/bench.svg]
"""

from __future__ import annotations

import json
import sys
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ACTIONS = ("list", "create", "disable", "enable", "detail", "delete")
KEYADMIN, DIRECT = "#2b6cb0", "#9aa5b1"
PHASES = (
    ("upstream", "App Services request (as keyadmin saw it)", "#9aa5b1"),
    ("db", "database", "#d69e2e"),
    ("render", "templates", "#38a169"),
    ("rest", "rest of keyadmin", "#2b6cb0"),
    ("outside", "outside keyadmin's app figure: gunicorn, sockets", "#c53030"),
)
WIDTH = 760
LEFT = 80
PLOT = WIDTH - LEFT - 30
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def quantile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def _text(x: float, y: float, text: str, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {extra}>{escape(text)}</text>'


def _heading(top: float, text: str) -> str:
    return _text(LEFT - 70, top + 10, text, extra='font-weight="600"')


def _axis(top: float, bottom: float, scale, upto: float, step: float, unit: str) -> list[str]:
    out = []
    tick = 0.0
    while tick <= upto + 1e-9:
        x = scale(tick)
        out.append(
            f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" stroke="#e2e8f0"/>'
        )
        out.append(_text(x, bottom + 14, f"{tick:g}{unit}", "middle", 'fill="#4a5568"'))
        tick += step
    return out


def _step(upto: float) -> float:
    for step in (1, 2, 5, 10, 20, 25, 50, 100):
        if upto / step <= 10:
            return step
    return 200


def latency_panel(results: dict, top: float) -> tuple[list[str], float]:
    latency = results["latency"]
    upto = max(quantile(latency[a]["keyadmin_ms"], 0.95) for a in ACTIONS) * 1.05
    low = min(quantile(latency[a]["direct_ms"], 0.05) for a in ACTIONS)
    start = max(0.0, (low // 10) * 10 - 10)

    def scale(ms: float) -> float:
        return LEFT + (ms - start) / (upto - start) * PLOT

    row_height, y = 34, top + 28
    out = [
        _heading(
            top,
            f"Latency at {results['config']['latency_ms']} ms upstream, one request at a time "
            f"({latency['list']['samples']} of each): p5-p95, p25-p75, p50",
        )
    ]
    bottom = y + row_height * len(ACTIONS)
    tick = 0.0
    step = _step(upto - start)
    while start + tick <= upto:
        x = scale(start + tick)
        out.append(
            f'<line x1="{x:.1f}" y1="{y - 6:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" stroke="#e2e8f0"/>'
        )
        out.append(_text(x, bottom + 14, f"{start + tick:g} ms", "middle", 'fill="#4a5568"'))
        tick += step
    for action in ACTIONS:
        out.append(_text(LEFT - 8, y + 14, action, "end"))
        for offset, name, colour in ((4, "keyadmin_ms", KEYADMIN), (16, "direct_ms", DIRECT)):
            values = latency[action][name]
            p5, p25, p50, p75, p95 = (quantile(values, q) for q in (0.05, 0.25, 0.5, 0.75, 0.95))
            mid = y + offset + 4
            out.append(
                f'<line x1="{scale(p5):.1f}" y1="{mid:.1f}" x2="{scale(p95):.1f}" '
                f'y2="{mid:.1f}" stroke="{colour}" stroke-width="1.5"/>'
            )
            out.append(
                f'<rect x="{scale(p25):.1f}" y="{mid - 4:.1f}" '
                f'width="{max(scale(p75) - scale(p25), 1):.1f}" height="8" fill="{colour}" '
                'fill-opacity="0.35" stroke="none"/>'
            )
            out.append(
                f'<line x1="{scale(p50):.1f}" y1="{mid - 6:.1f}" x2="{scale(p50):.1f}" '
                f'y2="{mid + 6:.1f}" stroke="{colour}" stroke-width="2.5"/>'
            )
        ratio = latency[action]["ratio_p50"]
        out.append(_text(WIDTH - 4, y + 14, f"{ratio:.2f}x", "end", 'fill="#4a5568"'))
        y += row_height
    legend_y = bottom + 32
    out.append(
        f'<rect x="{LEFT}" y="{legend_y - 9}" width="12" height="8" fill="{KEYADMIN}"/>'
        + _text(LEFT + 16, legend_y, "through keyadmin")
        + f'<rect x="{LEFT + 140}" y="{legend_y - 9}" width="12" height="8" fill="{DIRECT}"/>'
        + _text(LEFT + 156, legend_y, "the same App Services request, direct")
        + _text(WIDTH - 4, legend_y, "p50 ratio", "end", 'fill="#4a5568"')
    )
    return out, legend_y + 20


def phases_of(row: dict) -> dict[str, float]:
    timing = row["server_timing_p50"]
    app = timing.get("app", 0.0)
    upstream, db, render = (timing.get(name, 0.0) for name in ("upstream", "db", "render"))
    return {
        "upstream": upstream,
        "db": db,
        "render": render,
        "rest": max(app - upstream - db - render, 0.0),
        "outside": max(row["keyadmin_p50"] - app, 0.0),
    }


def phase_panel(results: dict, top: float) -> tuple[list[str], float]:
    latency = results["latency"]
    rows = {action: phases_of(latency[action]) for action in ACTIONS}
    upto = max(sum(parts.values()) for parts in rows.values()) * 1.12  # room for the labels
    upto = max(upto, max(latency[a]["direct_p50"] for a in ACTIONS) * 1.05)

    def scale(ms: float) -> float:
        return LEFT + ms / upto * PLOT

    out = [
        _heading(
            top, "Where keyadmin's p50 goes (Server-Timing medians); the dashed line is direct p50"
        )
    ]
    row_height, y = 26, top + 28
    bottom = y + row_height * len(ACTIONS)
    out += _axis(y - 6, bottom, scale, upto, _step(upto), " ms")
    for action in ACTIONS:
        out.append(_text(LEFT - 8, y + 13, action, "end"))
        x = 0.0
        for name, _label, colour in PHASES:
            width = rows[action][name]
            if width > 0:
                out.append(
                    f'<rect x="{scale(x):.1f}" y="{y + 3:.1f}" '
                    f'width="{max(scale(x + width) - scale(x), 0.5):.1f}" height="14" '
                    f'fill="{colour}"><title>{escape(name)} {width:.1f} ms</title></rect>'
                )
            x += width
        own = x - rows[action]["upstream"]
        out.append(_text(scale(x) + 4, y + 14, f"+{own:.1f} ms", extra='fill="#4a5568"'))
        direct = scale(latency[action]["direct_p50"])
        out.append(
            f'<line x1="{direct:.1f}" y1="{y:.1f}" x2="{direct:.1f}" y2="{y + 20:.1f}" '
            'stroke="#1a202c" stroke-dasharray="3 2"/>'
        )
        y += row_height
    legend_y = bottom + 32
    x = LEFT - 70
    for _name, label, colour in PHASES:
        width = 16 + 6.6 * len(label) + 18
        if x + width > WIDTH:
            x, legend_y = LEFT - 70, legend_y + 16
        out.append(f'<rect x="{x}" y="{legend_y - 9}" width="12" height="8" fill="{colour}"/>')
        out.append(_text(x + 16, legend_y, label))
        x += width
    return out, legend_y + 16


CPU_ACTIONS = ("list", "list_20", "create", "disable", "enable", "detail", "delete", "note_edit")
FLOOR = "#38a169"


def cpu_panel(results: dict, top: float) -> tuple[list[str], float]:
    cpu = results["cpu_ms_per_action"]
    goals = results["goals"]["per_action"]
    floor = (results.get("floor") or {}).get("cpu_ms_per_request")
    shown = [action for action in CPU_ACTIONS if action in cpu]
    upto = max([cpu[a] for a in shown] + [floor or 0]) * 1.15

    def scale(ms: float) -> float:
        return LEFT + ms / upto * PLOT

    out = [
        _heading(
            top, "keyadmin's workers' CPU per action, back to back at 0 ms; the tick is its goal"
        )
    ]
    row_height, y = 22, top + 28
    bottom = y + row_height * len(shown)
    out += _axis(y - 6, bottom, scale, upto, _step(upto), " ms")
    for action in shown:
        out.append(_text(LEFT - 8, y + 12, action.replace("_", " "), "end"))
        out.append(
            f'<rect x="{LEFT}" y="{y + 3:.1f}" width="{scale(cpu[action]) - LEFT:.1f}" '
            f'height="12" fill="{KEYADMIN}"><title>{cpu[action]:.2f} ms</title></rect>'
        )
        out.append(_text(scale(cpu[action]) + 4, y + 13, f"{cpu[action]:.1f} ms", extra=""))
        goal = (goals.get(action) or {}).get("cpu_ms")
        if goal:
            out.append(
                f'<line x1="{scale(goal):.1f}" y1="{y:.1f}" x2="{scale(goal):.1f}" '
                f'y2="{y + 18:.1f}" stroke="#1a202c" stroke-width="2"/>'
            )
        y += row_height
    legend_y = bottom + 32
    if floor:
        x = scale(floor)
        out.append(
            f'<line x1="{x:.1f}" y1="{top + 22:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" '
            f'stroke="{FLOOR}" stroke-width="2" stroke-dasharray="5 3"/>'
        )
        out.append(
            f'<line x1="{LEFT - 70}" y1="{legend_y - 4}" x2="{LEFT - 58}" y2="{legend_y - 4}" '
            f'stroke="{FLOOR}" stroke-width="2" stroke-dasharray="5 3"/>'
            + _text(
                LEFT - 54,
                legend_y,
                f"the stack's floor, {floor:.1f} ms: one bare Django view with a database "
                "session and one requests call",
            )
        )
    return out, legend_y + 16


def svg(results: dict) -> str:
    first, after_first = latency_panel(results, 10)
    second, after_second = phase_panel(results, after_first + 10)
    third, height = cpu_panel(results, after_second + 10)
    title = f"keyadmin make bench, {results['when']}, {results['machine']['cpus']} CPUs"
    body = "\n".join([*first, *second, *third])
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0f}" '
        f'viewBox="0 0 {WIDTH} {height:.0f}" {FONT} role="img">\n'
        f"<title>{escape(title)}</title>\n"
        f'<rect width="100%" height="100%" fill="#ffffff"/>\n{body}\n</svg>\n'
    )


def write(results: dict, path: Path) -> None:
    path.write_text(svg(results))


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "bench" / "results.json"
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "docs" / "bench.svg"
    write(json.loads(source.read_text()), target)
    print(f"written to {target}")
