"""/metrics: Prometheus metrics for a scraper on this machine or holding the token, nobody else."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from keyadmin import metrics
from keyadmin.models import AuditEvent

ELSEWHERE = "203.0.113.7"  # a client address that is not this machine
TOKEN = "metrics-token-for-the-tests-" + "0123456789" * 2

LABELS = {
    "keyadmin_http_requests": {"route", "method", "status"},
    "keyadmin_http_request_duration_seconds": {"route"},
    "keyadmin_upstream_requests": {"route", "outcome"},
    "keyadmin_upstream_request_duration_seconds": {"route"},
    "keyadmin_signin_throttle_blocks": {"scope"},
    "keyadmin_signin_throttle_refusals": {"scope"},
    "keyadmin_audit_writes": {"action", "outcome", "result"},
    "keyadmin_staff_signins": {"mode", "outcome"},
    "keyadmin_act_for_active_connections": set(),
}


def scraped(response) -> dict[str, list[tuple[dict, float]]]:
    """{sample name: [(labels, value), ...]} of a /metrics answer."""
    assert response.status_code == 200, response.content[:500]
    samples: dict[str, list[tuple[dict, float]]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def label_names(response) -> dict[str, set[str]]:
    """{metric name: the label names its samples carry, histogram buckets' `le` aside}."""
    return {
        family.name: {name for sample in family.samples for name in sample.labels} - {"le"}
        for family in text_string_to_metric_families(response.content.decode())
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return sum(v for found, v in samples.get(name, []) if labels.items() <= found.items())


def assert_refused(response) -> None:
    assert response.status_code == 404
    assert b"keyadmin_" not in response.content
    assert "Set-Cookie" not in response.headers


def test_it_exports_every_metric_with_its_labels(client):
    # Counts are the process's, earlier tests' included: what this test adds is compared.
    before = scraped(client.get("/metrics"))
    client.get("/healthz")
    client.get("/keys/0123456789abcdef01234567/")
    metrics.observe_upstream("PUT", "PUT /auth/api_keys/{id}/enable", "204", 0.05)
    metrics.observe_upstream("GET", "/app/{app}/location", "timeout", 10.5)
    metrics.throttled(["target"], ["target", "address"])
    metrics.audit_written("signin", "denied", stored=True)

    response = client.get("/metrics")

    assert label_names(response) == LABELS
    after = scraped(response)

    def added(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert added("keyadmin_http_requests_total", route="healthz", status="200") == 1
    # A path with an id is counted under its pattern's name, never the path.
    assert added("keyadmin_http_requests_total", route="keyadmin:key-detail") == 1
    upstream = "keyadmin_upstream_request_duration_seconds"
    location = "GET /app/{app}/location"  # the method said once, though the call gave it apart
    assert added(upstream + "_count", route=location) == 1
    assert added(upstream + "_bucket", route=location, le="10.0") == 0  # 10.5 s: past the last
    assert added(upstream + "_bucket", route="PUT /auth/api_keys/{id}/enable", le="0.05") == 1
    assert added("keyadmin_upstream_requests_total", route=location, outcome="timeout") == 1
    assert added("keyadmin_signin_throttle_blocks_total", scope="target") == 1
    assert added("keyadmin_signin_throttle_refusals_total", scope="address") == 1
    assert added("keyadmin_audit_writes_total", action="signin", result="stored") == 1
    assert added("keyadmin_staff_signins_total", mode="none", outcome="denied") == 1
    assert after["keyadmin_act_for_active_connections"] == [({}, 0)]


def test_the_buckets_go_from_5_ms_to_10_s(client):
    metrics.observe_upstream("GET", "GET /auth/api_keys", "200", 0.003)

    samples = scraped(client.get("/metrics"))

    bounds = {
        found["le"] for found, _ in samples["keyadmin_upstream_request_duration_seconds_bucket"]
    }
    assert {"0.005", "0.05", "0.1", "1.0", "10.0", "+Inf"} <= bounds


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_a_scraper_on_this_machine_needs_no_token(client, address):
    response = client.get("/metrics", REMOTE_ADDR=address)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert "no-store" in response["Cache-Control"]


def test_a_client_elsewhere_gets_the_404_of_an_unknown_page(client):
    unknown = client.get("/no-such-page", REMOTE_ADDR=ELSEWHERE)
    response = client.get("/metrics", REMOTE_ADDR=ELSEWHERE)

    assert_refused(response)
    assert response.content == unknown.content


@pytest.mark.parametrize("proxies", [0, 1])
@pytest.mark.parametrize(
    "header", ["HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP"], ids=str.lower
)
def test_a_request_through_a_proxy_on_this_machine_is_not_from_this_machine(
    client, settings, proxies, header
):
    # nginx on this host connects from 127.0.0.1 for everyone; the client may even claim loopback.
    settings.KEYADMIN_TRUSTED_PROXY_COUNT = proxies

    for forwarded in (ELSEWHERE, "127.0.0.1", f"127.0.0.1, {ELSEWHERE}"):
        assert_refused(client.get("/metrics", REMOTE_ADDR="127.0.0.1", **{header: forwarded}))


def test_the_configured_token_lets_a_scraper_elsewhere_in(client, settings):
    settings.KEYADMIN_METRICS_TOKEN = TOKEN

    response = client.get("/metrics", REMOTE_ADDR=ELSEWHERE, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert "keyadmin_http_requests_total" in scraped(response)


@pytest.mark.parametrize(
    "authorization",
    [
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        "Bearer ",
        f"Basic {TOKEN}",
        TOKEN,
    ],
    ids=["longer", "shorter", "empty", "basic", "no-scheme"],
)
def test_anything_but_the_token_is_refused_from_elsewhere(client, settings, authorization):
    settings.KEYADMIN_METRICS_TOKEN = TOKEN

    assert_refused(client.get("/metrics", REMOTE_ADDR=ELSEWHERE, HTTP_AUTHORIZATION=authorization))


def test_a_wrong_token_is_refused_from_this_machine_too(client, settings):
    settings.KEYADMIN_METRICS_TOKEN = TOKEN

    assert_refused(client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer not-{TOKEN}"))


def test_no_token_configured_lets_no_bearer_in(client, settings):
    settings.KEYADMIN_METRICS_TOKEN = ""

    assert_refused(client.get("/metrics", REMOTE_ADDR=ELSEWHERE, HTTP_AUTHORIZATION="Bearer "))


def test_a_scrape_opens_no_session_writes_no_audit_row_and_needs_no_csrf(
    client, django_assert_max_num_queries
):
    with django_assert_max_num_queries(2):  # the act-for gauge's audit query, nothing else
        response = client.get("/metrics")

    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert AuditEvent.objects.count() == 0
    assert client.post("/metrics").status_code == 405  # reached the view: no CSRF refusal
    assert_refused(client.post("/metrics", REMOTE_ADDR=ELSEWHERE))


def test_it_is_not_redirected_to_https(client, settings):
    settings.SECURE_SSL_REDIRECT = True

    assert client.get("/metrics").status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/keys/").status_code == 301


def test_answers_given_before_the_url_is_resolved_are_counted_under_its_pattern(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    redirects = value(scraped(client.get("/metrics")), "keyadmin_http_requests_total", status="301")

    client.get("/keys/0123456789abcdef01234567/")
    client.get("/no-such-page/0123456789abcdef01234567/")

    samples = scraped(client.get("/metrics"))
    assert value(samples, "keyadmin_http_requests_total", status="301") == redirects + 2
    assert value(samples, "keyadmin_http_requests_total", route="keyadmin:key-detail", status="301")
    assert value(samples, "keyadmin_http_requests_total", route="unmatched", status="301")
    assert "0123456789abcdef01234567" not in client.get("/metrics").content.decode()
