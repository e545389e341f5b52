"""The App Services client against the running local App Services server, over real HTTP."""

from __future__ import annotations

import http.server
import threading
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from keyadmin import appservices
from keyadmin.appservices import AppServices, UserSession
from tests.conftest import start_emulator


@pytest.fixture(autouse=True)
def _fresh_location_cache():
    appservices.forget_locations()
    yield
    appservices.forget_locations()


@pytest.fixture
def user(emulator, user_credentials) -> UserSession:
    email, password = user_credentials
    tokens = AppServices().login_email_password(email, password)
    return UserSession(tokens.hostname, tokens.refresh_token, tokens.access_token)


@pytest.fixture
def recorder():
    """A loopback server that records every request it gets (it must get none)."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()

        do_POST = do_PUT = do_DELETE = do_GET

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", seen
    server.shutdown()


# --- sign-in and session ---


def test_it_signs_in_with_email_and_password(emulator, user_credentials):
    tokens = AppServices().login_email_password(*user_credentials)

    assert tokens.hostname == emulator.url
    assert len(tokens.user_id) == 24
    assert tokens.refresh_token not in repr(tokens)
    assert tokens.access_token not in repr(tokens)


def test_it_looks_up_the_location_once_per_process_and_app(emulator, user_credentials):
    emulator.reset_stats()

    AppServices().login_email_password(*user_credentials)
    AppServices().login_email_password(*user_credentials)

    assert emulator.request_count("location") == 1
    assert emulator.request_count("login") == 2


def test_it_reports_a_wrong_password_as_bad_credentials(emulator, user_credentials):
    email, _password = user_credentials
    with pytest.raises(appservices.BadCredentials) as caught:
        AppServices().login_email_password(email, "not-the-password")
    assert caught.value.status == 401
    assert caught.value.error_code == "InvalidPassword"


def test_an_unknown_user_is_bad_credentials_too(emulator):
    with pytest.raises(appservices.BadCredentials) as caught:
        AppServices().login_email_password("nobody-at-all@example.com", "whatever-password")
    assert (caught.value.status, caught.value.error_code) == (401, "InvalidPassword")


REFUSED_TOKENS = (
    "This App Services app does not accept keyadmin's sign-in tokens (custom JWT provider off "
    "or misconfigured)."
)


def test_a_custom_token_login_to_an_app_without_the_provider_says_so(emulator):
    """The shared server has no custom JWT provider: 401 InvalidSession "unauthorized"."""
    with pytest.raises(appservices.SignInTokenRefused) as caught:
        AppServices().login("custom-token", {"token": "a.b.c"})
    assert str(caught.value.message) == REFUSED_TOKENS
    assert (caught.value.status, caught.value.error_code) == (401, "InvalidSession")
    assert caught.value.path == "POST /app/{app}/auth/providers/custom-token/login"


def test_a_custom_token_the_app_does_not_trust_says_so(tmp_path):
    server = start_emulator(tmp_path / "custom.sqlite3", "--custom-token-secret", "s" * 40)
    try:
        claims = {"sub": "staff-9", "aud": server.app_id, "exp": datetime.now(UTC) + timedelta(1)}
        token = jwt.encode(claims, "another-secret-" * 3, algorithm="HS256")
        with pytest.raises(appservices.SignInTokenRefused) as caught:
            AppServices(base_url=server.url).login("custom-token", {"token": token})
    finally:
        server.stop()
    assert caught.value.message == REFUSED_TOKENS
    assert caught.value.status == 401


@pytest.mark.parametrize(
    "body",
    [
        {"error": "unauthorized", "error_code": "InvalidSession"},
        {"error": "unauthorized", "error_code": "AuthError"},
        {"error": "unauthorized"},
    ],
)
def test_only_the_custom_token_login_reads_unauthorized_as_refused_tokens(emulator, body):
    emulator.add_fault(route="login", action="status", status=401, body=body)
    with pytest.raises(appservices.SignInTokenRefused):
        AppServices().login("custom-token", {"token": "a.b.c"})
    with pytest.raises(appservices.BadCredentials):
        AppServices().login_email_password("a@example.com", "some-password")


def test_it_reports_an_unknown_app_id(emulator):
    with pytest.raises(appservices.RequestRejected) as caught:
        AppServices(app_id="no-such-app").login_email_password("a@example.com", "x")
    assert caught.value.status == 404
    assert "app id" in caught.value.message


def test_it_reads_the_profile(user, user_credentials):
    profile = user.profile()

    assert profile.email == user_credentials[0]
    assert profile.type == "normal"
    assert "local-userpass" in {identity.provider_type for identity in profile.identities}


def test_it_refreshes_the_access_token(user):
    first = user.profile()
    new_access = user.refresh()

    assert new_access.count(".") == 2
    assert user.profile() == first


def test_it_signs_in_with_a_custom_token(tmp_path):
    secret = "s" * 40
    server = start_emulator(tmp_path / "custom.sqlite3", "--custom-token-secret", secret)
    try:
        token = jwt.encode(
            {
                "sub": "staff-42",
                "aud": server.app_id,
                "exp": datetime.now(UTC) + timedelta(minutes=5),
            },
            secret,
            algorithm="HS256",
        )
        tokens = AppServices(base_url=server.url).login("custom-token", {"token": token})
        profile = UserSession(tokens.hostname, tokens.refresh_token).profile()
    finally:
        server.stop()

    assert "custom-token" in {identity.provider_type for identity in profile.identities}


@pytest.mark.parametrize("status", [401, 403])
def test_a_foreign_signature_on_a_session_call_ends_the_session(user, emulator, status):
    emulator.add_fault(
        route="session_refresh",
        action="status",
        status=status,
        body={"error": "signature is invalid"},
    )
    with pytest.raises(appservices.SessionEnded):
        user.refresh()


def test_a_refresh_token_signed_elsewhere_ends_the_session(user):
    claims = jwt.decode(user._refresh_token, options={"verify_signature": False})
    forged = jwt.encode(claims, "not-the-servers-signing-key-0123456789", algorithm="HS256")

    with pytest.raises(appservices.SessionEnded) as caught:
        UserSession(user.hostname, forged).list_api_keys()
    assert (caught.value.status, caught.value.error_code) == (401, None)


def test_logout_revokes_the_refresh_token(user):
    user.logout()

    with pytest.raises(appservices.SessionEnded) as caught:
        user.list_api_keys()
    assert caught.value.status == 401


# --- keys ---


def test_it_manages_keys_from_creation_to_deletion(user, emulator):
    created = user.create_api_key("ci-deploy")

    assert created.key and len(created.key) >= 32
    assert created.key not in repr(created)
    assert created.disabled is False
    assert abs(created.created - datetime.now(UTC)) < timedelta(minutes=1)
    second = user.create_api_key("ci-backup")
    assert [key.name for key in user.list_api_keys()] == ["ci-deploy", "ci-backup"]
    assert not hasattr(user.get_api_key(created.id), "key")

    user.disable_api_key(created.id)
    user.disable_api_key(created.id)  # idempotent
    assert user.get_api_key(created.id).disabled is True
    user.enable_api_key(created.id)
    assert user.get_api_key(created.id).enabled is True

    user.delete_api_key(created.id)
    with pytest.raises(appservices.KeyNotFound):
        user.get_api_key(created.id)
    assert [key.id for key in user.list_api_keys()] == [second.id]


def test_each_key_call_is_one_request_with_the_refresh_token(user, emulator):
    key = user.create_api_key("one-call")
    emulator.reset_stats()

    user.list_api_keys()
    user.get_api_key(key.id)
    user.disable_api_key(key.id)
    user.enable_api_key(key.id)
    user.delete_api_key(key.id)

    stats = emulator.stats()
    assert stats["total"] == 5
    for route in ("keys_list", "keys_get", "keys_disable", "keys_enable", "keys_delete"):
        assert stats["by_route"][route] == 1


def test_it_refuses_a_duplicate_name(user):
    user.create_api_key("twin")
    with pytest.raises(appservices.KeyNameTaken) as caught:
        user.create_api_key("twin")
    assert caught.value.status == 409


def test_it_refuses_the_21st_key(user):
    for number in range(appservices.MAX_KEYS_PER_USER):
        user.create_api_key(f"key-{number}")
    with pytest.raises(appservices.KeyLimitReached):
        user.create_api_key("one-too-many")


@pytest.mark.parametrize(
    "name", ["", "My very cool key", "%s", "$()!$", "ключ", "a" * 65, "x\u202ey", "<b>"]
)
def test_it_refuses_a_bad_name_before_any_request(user, emulator, name):
    emulator.reset_stats()
    with pytest.raises(appservices.InvalidKeyName):
        user.create_api_key(name)
    assert emulator.request_count() == 0


def test_it_maps_the_code_less_missing_name_answer_to_an_invalid_name(user, emulator):
    emulator.add_fault(
        route="keys_create",
        action="status",
        status=400,
        body={"error": "'name' is a required string"},
    )
    with pytest.raises(appservices.InvalidKeyName):
        user.create_api_key("fine-locally")


def test_it_maps_an_upstream_invalid_parameter_to_an_invalid_name(user, emulator):
    emulator.add_fault(
        route="keys_create",
        action="status",
        status=400,
        body={"error": "can only contain ASCII letters", "error_code": "InvalidParameter"},
    )
    with pytest.raises(appservices.InvalidKeyName):
        user.create_api_key("fine-locally")


def test_another_users_key_is_not_found(emulator, user, user_credentials):
    mine = user.create_api_key("mine")
    other_email = "other-" + user_credentials[0]
    emulator.create_user(other_email, "other-password")
    other_tokens = AppServices().login_email_password(other_email, "other-password")
    other = UserSession(other_tokens.hostname, other_tokens.refresh_token)

    for call in (other.get_api_key, other.enable_api_key, other.disable_api_key):
        with pytest.raises(appservices.KeyNotFound):
            call(mine.id)
    with pytest.raises(appservices.KeyNotFound):
        other.delete_api_key(mine.id)
    assert other.list_api_keys() == []


def test_an_anonymous_session_may_not_manage_keys(emulator):
    tokens = AppServices().login("anon-user", {})
    with pytest.raises(appservices.NotAllowed) as caught:
        UserSession(tokens.hostname, tokens.refresh_token).create_api_key("nope")
    assert caught.value.status == 403


def test_a_session_opened_with_an_api_key_may_not_manage_keys(user):
    created = user.create_api_key("login-key")
    tokens = AppServices().login("api-key", {"key": created.key})
    with pytest.raises(appservices.NotAllowed):
        UserSession(tokens.hostname, tokens.refresh_token).list_api_keys()


def test_a_disabled_key_cannot_sign_in(user):
    created = user.create_api_key("off-key")
    user.disable_api_key(created.id)
    with pytest.raises(appservices.BadCredentials):
        AppServices().login("api-key", {"key": created.key})


@pytest.mark.parametrize(
    "key_id",
    [
        "../session",
        "..%2fsession",
        "../delete",
        "0123456789abcdef0123456",
        "0123456789abcdef012345678",
        "0123456789ABCDEF01234567",
        "٠١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦٧٨٩٠١٢٣",
        "0123456789abcdef01234567\n",
        "",
    ],
)
def test_it_never_sends_a_malformed_key_id(user, emulator, key_id):
    emulator.reset_stats()
    for call in (
        user.get_api_key,
        user.enable_api_key,
        user.disable_api_key,
        user.delete_api_key,
    ):
        with pytest.raises(appservices.InvalidKeyId):
            call(key_id)
    assert emulator.request_count() == 0


# --- failures ---


def test_a_read_timeout_is_reported_as_unavailable(user, emulator, settings):
    settings.APPSERVICES_TIMEOUT = (1, 0.3)
    emulator.add_fault(route="keys_list", action="delay", delay_ms=1500)
    started = time.monotonic()

    with pytest.raises(appservices.UpstreamUnavailable) as caught:
        user.list_api_keys()

    assert time.monotonic() - started < 1.4
    assert "in time" in caught.value.message


def test_a_lost_create_answer_is_not_retried_and_says_the_key_may_exist(
    user, emulator, user_credentials
):
    emulator.add_fault(route="keys_create", action="drop", when="after", times=1)
    emulator.reset_stats()

    with pytest.raises(appservices.CreateOutcomeUnknown):
        user.create_api_key("lost-answer")

    assert emulator.request_count("keys_create") == 1
    assert [key["name"] for key in emulator.keys_of(user_credentials[0])] == ["lost-answer"]


def test_a_create_timeout_is_an_unknown_outcome(user, emulator, settings):
    settings.APPSERVICES_TIMEOUT = (1, 0.3)
    emulator.add_fault(route="keys_create", action="delay", delay_ms=1500, when="after")
    emulator.reset_stats()

    with pytest.raises(appservices.CreateOutcomeUnknown):
        user.create_api_key("slow-create")
    assert emulator.request_count("keys_create") == 1


def test_a_dropped_connection_is_retried_once_for_an_idempotent_call(user, emulator):
    emulator.add_fault(route="keys_list", action="drop", times=1)
    emulator.reset_stats()

    assert user.list_api_keys() == []
    assert emulator.request_count("keys_list") == 2


def test_it_gives_up_after_the_second_dropped_connection(user, emulator):
    emulator.add_fault(route="keys_list", action="drop", times=2)
    with pytest.raises(appservices.UpstreamUnavailable):
        user.list_api_keys()


def test_a_refused_connection_is_unreachable(settings):
    settings.APPSERVICES_BASE_URL = "http://127.0.0.1:9"
    with pytest.raises(appservices.UpstreamUnreachable) as caught:
        AppServices().login_email_password("a@example.com", "pw")
    assert "could not reach" in caught.value.message


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"action": "html", "status": 502}, appservices.UpstreamGarbage),
        (
            {"action": "status", "status": 500, "body": {"error": "boom"}},
            appservices.UpstreamUnavailable,
        ),
        ({"action": "status", "status": 503, "body": "down"}, appservices.UpstreamGarbage),
        (
            {"action": "status", "status": 429, "body": {"error": "slow down"}},
            appservices.UpstreamUnavailable,
        ),
        ({"action": "malformed", "status": 200}, appservices.UpstreamGarbage),
        (
            {"action": "status", "status": 403, "body": {"error": "forbidden"}},
            appservices.NotAllowed,
        ),
        (
            {"action": "status", "status": 401, "body": {"error_code": "InvalidSession"}},
            appservices.SessionEnded,
        ),
        # A refresh token with a foreign signature: the SDKs accept 401 or 403 for it, and
        # either way the session is over; it is not about what this session may do.
        (
            {"action": "status", "status": 403, "body": {"error": "signature is invalid"}},
            appservices.SessionEnded,
        ),
        (
            {"action": "status", "status": 401, "body": {"error": "signature is invalid"}},
            appservices.SessionEnded,
        ),
    ],
)
def test_it_types_each_upstream_failure(user, emulator, fault, error):
    emulator.add_fault(route="keys_list", **fault)
    with pytest.raises(error) as caught:
        user.list_api_keys()
    assert caught.value.message
    assert caught.value.path == "GET /auth/api_keys"


def test_it_never_follows_a_redirect(user, emulator, recorder):
    elsewhere, seen = recorder
    emulator.add_fault(route="keys_list", action="redirect", location=f"{elsewhere}/steal")

    with pytest.raises(appservices.UpstreamGarbage) as caught:
        user.list_api_keys()

    assert "redirect" in caught.value.message
    assert seen == []


def test_it_refuses_a_location_outside_the_allowlist(emulator, recorder, user_credentials):
    elsewhere, seen = recorder
    not_allowed = elsewhere.replace("127.0.0.1", "localhost")  # loopback, but not allowlisted
    emulator.add_fault(
        route="location",
        action="status",
        status=200,
        body={"hostname": not_allowed, "ws_hostname": not_allowed.replace("http", "ws")},
    )
    emulator.reset_stats()

    with pytest.raises(appservices.HostNotAllowed):
        AppServices().login_email_password(*user_credentials)
    assert emulator.request_count("login") == 0
    assert seen == []


def test_it_refuses_a_base_url_outside_the_allowlist_without_a_request(settings, recorder):
    elsewhere, seen = recorder
    settings.APPSERVICES_BASE_URL = elsewhere.replace("127.0.0.1", "localhost")
    with pytest.raises(appservices.HostNotAllowed):
        AppServices().login_email_password("a@example.com", "pw")
    assert seen == []


def test_it_ignores_proxy_variables(user, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "")
    assert user.list_api_keys() == []


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://services.cloud.mongodb.com", True),
        ("https://us-east-1.aws.services.cloud.mongodb.com", True),
        ("https://services.cloud.mongodb.com.evil.com", False),
        ("https://evilservices.cloud.mongodb.com", False),
        ("http://us-east-1.aws.services.cloud.mongodb.com", False),
        ("https://user:pw@services.cloud.mongodb.com", False),
        ("https://services.cloud.mongodb.com/api", False),
        ("https://services.cloud.mongodb.com?x=1", False),
        ("http://127.0.0.1:9090", True),
        ("ftp://services.cloud.mongodb.com", False),
    ],
)
def test_it_checks_origins_against_the_allowlist(settings, url, allowed):
    settings.APPSERVICES_ALLOWED_HOSTS = [
        "services.cloud.mongodb.com",
        "*.services.cloud.mongodb.com",
        "127.0.0.1",
    ]
    if allowed:
        assert appservices.check_origin(url) == url.split("?")[0]
    else:
        with pytest.raises(appservices.HostNotAllowed):
            appservices.check_origin(url)


def test_a_key_reads_its_creation_time_from_its_object_id():
    key = appservices.ApiKey(id="65f0a1b2c3d4e5f601234567", name="k", disabled=False)
    assert key.created == datetime(2024, 3, 12, 18, 40, 50, tzinfo=UTC)
    assert key.short_id == "01234567"
