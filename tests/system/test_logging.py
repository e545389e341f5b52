"""One log line per request (keyadmin.access), the JSON format, and what never reaches a log."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from keyadmin.logformat import (
    JsonFormatter,
    PlainFormatter,
    clean_path,
    current_request_id,
    logging_config,
)
from keyadmin.redact import for_log
from tests.sso.staff import as_staff

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
KEY_SECRET = "Zx9" * 21 + "Q"  # 64 characters, as an App Services key secret


def access_records(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "keyadmin.access"]


def test_one_line_per_request_with_its_id_and_without_the_query(client, caplog):
    caplog.set_level(logging.INFO, logger="keyadmin.access")

    response = client.get("/healthz?token=sentinel-value", HTTP_COOKIE="sessionid=cookie-value")

    (record,) = access_records(caplog)
    request_id = response["X-Request-ID"]
    assert record.getMessage() == (
        f"GET /healthz 200 {record.duration_ms:.1f}ms request_id={request_id} staff=-"
    )
    assert (record.method, record.path, record.status, record.request_id) == (
        "GET",
        "/healthz",
        200,
        request_id,
    )
    assert "sentinel" not in caplog.text
    assert "cookie-value" not in caplog.text


def test_the_line_names_a_signed_in_staff_member(client, settings, caplog):
    as_staff(client, settings)
    caplog.set_level(logging.INFO, logger="keyadmin.access")

    client.get("/keys/")  # not connected to App Services: a redirect to its sign-in

    (record,) = access_records(caplog)
    assert record.status == 302
    assert record.staff == "sub-sam-support"
    assert record.getMessage().endswith("staff=sub-sam-support")


def test_a_404_is_logged_and_a_token_in_its_path_is_not(client, caplog):
    caplog.set_level(logging.INFO, logger="keyadmin.access")

    client.get(f"/keys/{JWT}/{KEY_SECRET}/")

    (record,) = access_records(caplog)
    assert record.status == 404
    assert record.path == "/keys/[redacted]/[redacted]/"
    # Django's own "Not Found: <path>" carries the raw path; what the console writes does not.
    for formatter in (PlainFormatter(), JsonFormatter()):
        written = "\n".join(formatter.format(r) for r in caplog.records)
        assert "Not Found" in written
        assert JWT not in written
        assert KEY_SECRET not in written


def test_a_path_cannot_forge_log_lines(client, caplog):
    caplog.set_level(logging.INFO, logger="keyadmin.access")

    client.get("/x%0d%0aGET /keys/ 200 1.0ms request_id=forged")

    (record,) = access_records(caplog)
    assert "\n" not in record.getMessage() and "\r" not in record.getMessage()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Authorization: Bearer {JWT}", "Authorization: Bearer [redacted]"),
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic [redacted]"),
        (f"refresh={JWT}", "refresh=[redacted]"),
        (f"secret {KEY_SECRET} end", "secret [redacted] end"),
        ("Cookie: __Host-sessionid=abc123; csrftoken=def", "Cookie: __Host-sessionid=[redacted]; "),
        # Identifiers stay readable: a key id, a request id, a uuid, an Entra ID subject.
        ("key 6566f3c2a1b2c3d4e5f60718", "key 6566f3c2a1b2c3d4e5f60718"),
        ("id 9f0c3a8e5b7d4e2f8a1c6b3d9e0f2a4c", "id 9f0c3a8e5b7d4e2f8a1c6b3d9e0f2a4c"),
        (
            "sub AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
            "sub AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
        ),
    ],
)
def test_redact(text, expected):
    assert for_log(text).startswith(expected)


def test_clean_path_cuts_long_paths():
    assert len(clean_path("/" + "a/" * 500)) == 200


def _record(message: str, *args, **extra) -> logging.LogRecord:
    record = logging.LogRecord("keyadmin.test", logging.WARNING, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return record


def test_the_json_format():
    record = _record("GET %s %s", "/keys/", 200, method="GET", path="/keys/", status=200)
    token = current_request_id.set("abc123")
    try:
        entry = json.loads(JsonFormatter().format(record))
    finally:
        current_request_id.reset(token)

    assert entry["level"] == "WARNING"
    assert entry["logger"] == "keyadmin.test"
    assert entry["message"] == "GET /keys/ 200"
    assert entry["request_id"] == "abc123"
    assert (entry["method"], entry["path"], entry["status"]) == ("GET", "/keys/", 200)
    assert entry["time"].endswith("+00:00")


def test_the_json_format_never_serialises_a_request_object(rf):
    request = rf.get("/keys/?token=sentinel-value")
    request.request_id = "rid-1"
    record = _record("Not Found: %s", request.path, request=request, status_code=404)

    line = JsonFormatter().format(record)

    assert "sentinel" not in line
    assert json.loads(line)["request_id"] == "rid-1"
    assert json.loads(line)["status_code"] == 404


def test_the_json_format_keeps_a_traceback_on_one_line_redacted():
    try:
        raise ValueError(f"upstream said {JWT}")
    except ValueError:
        record = _record("failed")
        record.exc_info = sys.exc_info()

    line = JsonFormatter().format(record)

    assert "\n" not in line
    assert "ValueError: upstream said [redacted]" in json.loads(line)["exception"]


def test_the_plain_format_redacts_too():
    line = PlainFormatter().format(_record("token %s", JWT))
    assert line.endswith("WARNING keyadmin.test token [redacted]")


def test_the_logging_setting():
    plain = logging_config("INFO", "plain")
    assert plain["formatters"]["keyadmin"]["()"] is PlainFormatter
    assert plain["loggers"]["keyadmin"]["level"] == "INFO"
    assert logging_config("DEBUG", "json")["formatters"]["keyadmin"]["()"] is JsonFormatter


def test_a_secret_cut_by_the_length_limit_is_still_redacted():
    # Earlier tokens shrink to "[redacted]", so a secret cut at the first bound moves into view.
    secret = "A" * 64
    path = "/" + ("B" * 60 + "/") * 6 + secret + "/tail"

    cleaned = clean_path(path, limit=200)

    assert "AAAAAAAAAAAAAAAAAAAA" not in cleaned
    assert len(cleaned) <= 200
