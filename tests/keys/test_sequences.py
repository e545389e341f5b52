"""Hostile sequences (issue 10): stale tabs, replays, forged names in the trail, floods.

One staff session, two "tabs": a page rendered while connected to alice, then "Switch user" to
bob. Every state-changing form the old page holds is refused in place, costs App Services
nothing and leaves a "stale form" row in the audit trail. The trail keeps only names App Services
said; the "created moments ago" offer needs this session's own, already sent, form.
"""

from __future__ import annotations

import html as htmllib
import re
import secrets

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core import signing
from django.test import Client

from keyadmin import appservices
from keyadmin.appservices.connection import SESSION_KEY
from keyadmin.keys import resubmit
from keyadmin.keys.guards import BINDING_FIELD
from keyadmin.models import AuditEvent
from tests.support import (
    CREATE_URL,
    HTMX,
    KEYS_URL,
    SIGNIN_URL,
    FormClient,
    connect,
    connected,
    create_key,
    key_url,
    rendered_fields,
    sign_in_staff,
)

STALE = "This page was for {then} (app {app}); you are now connected as {now} (app {app})."
UNBOUND = "This form does not say which App Services user it was for"
TWIN = "was created moments ago"


def visible(html: str) -> str:
    return htmllib.unescape(" ".join(re.sub(r"<[^>]+>", " ", html).split()))


@pytest.fixture
def bob(emulator) -> tuple[str, str]:
    email = f"bob-{secrets.token_hex(4)}@example.com"
    password = secrets.token_urlsafe(12)
    emulator.create_user(email, password)
    return email, password


@pytest.fixture
def alice_tab(client, emulator, user_credentials):
    """Connected to alice with one key; returns the keys page as it was rendered for her."""
    connected(client, user_credentials)
    key_id = create_key(client, "alice-ci")
    page = client.get(KEYS_URL).content.decode()
    return key_id, page


def forms_of(page: str, key_id: str) -> dict[str, tuple[str, dict]]:
    """Every state-changing form of alice's page: (url, fields) as a browser would post them."""
    toggle = rendered_fields(page, f"toggle-{key_id}")
    delete = rendered_fields(page, f"delete-{key_id}")
    create = rendered_fields(page, "create-form")
    return {
        "create": (CREATE_URL, {**create, "name": "made-in-old-tab"}),
        "disable": (key_url(key_id, "disable"), toggle),
        "delete": (key_url(key_id, "delete"), {**delete, "confirm": "1"}),
        "delete-confirm-page": (key_url(key_id, "delete"), delete),
    }


FORMS = ["create", "disable", "delete", "delete-confirm-page"]


def assert_stale_refusal(response, *, htmx: bool, then: str, now: str) -> str:
    html = response.content.decode()
    assert response.status_code == (200 if htmx else 409)
    text = visible(html)
    assert STALE.format(then=then, now=now, app=settings.APPSERVICES_APP_ID) in text
    assert "Nothing was changed. Reload the page." in text
    # Nothing in the answer acts on bob under a page that still shows alice.
    assert f'name="{BINDING_FIELD}"' not in html.split('id="main"')[-1]
    assert 'name="form_nonce"' not in html
    return html


# --- Two tabs: a page rendered for alice, posted after switching to bob ----------------------


@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain"])
@pytest.mark.parametrize("form", FORMS)
def test_a_form_rendered_for_alice_does_nothing_once_bob_is_connected(
    client, emulator, user_credentials, bob, alice_tab, form, htmx
):
    key_id, alice_page = alice_tab
    url, fields = forms_of(alice_page, key_id)[form]
    connect(client, bob)  # "Switch user" in the other tab
    emulator.reset_stats()

    response = client.post(url, fields, headers=HTMX if htmx else {})

    html = assert_stale_refusal(response, htmx=htmx, then=user_credentials[0], now=bob[0])
    assert emulator.request_count() == 0
    assert emulator.keys_of(bob[0]) == []
    [alice_key] = emulator.keys_of(user_credentials[0])
    assert (alice_key["_id"], alice_key["disabled"]) == (key_id, False)
    if htmx and form != "create":
        assert html.lstrip().startswith(f'<tr id="key-{key_id}"')  # the row keeps its place
        assert 'class="cell-name" translate="no">alice-ci</th>' in html  # and its name
    if htmx and form == "create":
        assert html.lstrip().startswith('<div id="create-form"')
    event = AuditEvent.objects.latest("id")
    action = "create" if form == "create" else form.split("-")[0]
    assert (event.action, event.outcome) == (action, "denied")
    assert event.detail.startswith("stale form: rendered for user ")
    assert event.key_id == ("" if form == "create" else key_id)
    assert event.key_name == ""


def test_the_lost_key_delete_offer_of_alices_page_does_nothing_for_bob(
    client, emulator, user_credentials, bob
):
    connected(client, user_credentials)
    emulator.add_fault(route="keys_create", action="drop", when="after", times=1)
    page = client.post(CREATE_URL, {"name": "orphan"}).content.decode()  # the no-JS page
    [orphan] = emulator.keys_of(user_credentials[0])
    fields = rendered_fields(page, "create-form")
    connect(client, bob)
    emulator.reset_stats()

    # The offer's button submits the create form to the delete route with confirm=1.
    response = client.post(key_url(orphan["_id"], "delete"), {**fields, "confirm": "1"})

    assert_stale_refusal(response, htmx=False, then=user_credentials[0], now=bob[0])
    assert emulator.request_count() == 0
    assert [key["_id"] for key in emulator.keys_of(user_credentials[0])] == [orphan["_id"]]


def test_a_retry_form_of_alices_page_does_nothing_for_bob(
    client, emulator, user_credentials, bob, alice_tab
):
    key_id, alice_page = alice_tab
    row = client.post(
        key_url(key_id, "disable"), forms_of(alice_page, key_id)["disable"][1], headers=HTMX
    )
    assert "Disabled" in row.content.decode()
    emulator.add_fault(route="keys_enable", action="status", status=503, times=1)
    retry_row = client.post(
        key_url(key_id, "enable"), rendered_fields(row.content.decode()), headers=HTMX
    ).content.decode()
    assert "Retry" in retry_row  # the row with its Retry button, which submits the toggle form
    connect(client, bob)
    emulator.reset_stats()

    response = client.post(key_url(key_id, "enable"), rendered_fields(retry_row), headers=HTMX)

    assert_stale_refusal(response, htmx=True, then=user_credentials[0], now=bob[0])
    assert emulator.request_count() == 0
    assert emulator.keys_of(user_credentials[0])[0]["disabled"] is True


def test_alices_page_works_again_once_alice_is_connected_again(
    client, emulator, user_credentials, bob, alice_tab
):
    """The binding is about whom the form acts on, not which sign-in rendered it."""
    key_id, alice_page = alice_tab
    connect(client, bob)
    connect(client, user_credentials)
    emulator.reset_stats()

    url, fields = forms_of(alice_page, key_id)["disable"]
    response = client.post(url, fields, headers=HTMX)

    assert emulator.request_count() == 1
    assert emulator.keys_of(user_credentials[0])[0]["disabled"] is True
    app = settings.APPSERVICES_APP_ID
    assert f"of {user_credentials[0]} (app {app}) disabled" in visible(response.content.decode())


# --- Fail closed: no binding, a damaged one, one keyadmin did not sign ------------------------


def _forged(claims: list, key: str) -> str:
    return signing.dumps(claims, key=key, salt="keyadmin.keys.form-binding")


@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain"])
@pytest.mark.parametrize(
    "binding",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("garbage", id="garbage"),
        pytest.param("x" * 100_000, id="100kb"),
        pytest.param("damaged", id="one-character-changed"),
        pytest.param("foreign-key", id="signed-with-another-secret"),
    ],
)
@pytest.mark.parametrize("form", FORMS)
def test_a_form_without_a_valid_binding_is_refused_the_same_way(
    client, emulator, user_credentials, alice_tab, form, binding, htmx
):
    key_id, alice_page = alice_tab
    url, fields = forms_of(alice_page, key_id)[form]
    good = fields.pop(BINDING_FIELD, "x")
    if binding == "damaged":
        binding = good[:-1] + ("A" if good[-1] != "A" else "B")
    elif binding == "foreign-key":
        stored = client.session[SESSION_KEY]
        claims = [["app", stored["app_id"]], ["user", stored["user_id"]]]
        binding = _forged(claims, "not-our-key")
    if binding is not None:
        fields[BINDING_FIELD] = binding
    emulator.reset_stats()

    response = client.post(url, fields, bind=False, headers=HTMX if htmx else {})

    assert response.status_code == (200 if htmx else 409)
    text = visible(response.content.decode())
    assert UNBOUND in text and f"You are connected as {user_credentials[0]}" in text
    assert emulator.request_count() == 0
    [key] = emulator.keys_of(user_credentials[0])
    assert key["disabled"] is False
    event = AuditEvent.objects.latest("id")
    assert (event.outcome, event.detail) == ("denied", "stale form: no valid binding")


# --- The audit trail keeps only what App Services said ----------------------------------------

FORGED = "ceo-laptop"


@pytest.mark.parametrize("outcome", ["ok", "failed"])
@pytest.mark.parametrize("action", ["disable", "enable", "delete"])
def test_a_forged_name_posted_by_a_row_form_never_enters_the_trail(
    client, emulator, user_credentials, alice_tab, action, outcome
):
    key_id, _ = alice_tab
    if action == "enable":
        client.post(key_url(key_id, "disable"), {"name": "alice-ci"}, headers=HTMX)
    if outcome == "failed":
        emulator.add_fault(route=f"keys_{action}", action="status", status=503, times=1)
    data = {"name": FORGED, "disabled": "false", "confirm": "1"}

    response = client.post(key_url(key_id, action), data, headers=HTMX)

    if outcome == "failed":
        assert f'data-name="{FORGED}"' in response.content.decode()  # shown, display only
    event = AuditEvent.objects.filter(action=action).latest("id")
    assert (event.outcome, event.key_id) == (outcome, key_id)
    assert event.key_name == ""
    assert not AuditEvent.objects.filter(key_name=FORGED).exists()


def test_a_forged_name_on_a_failed_sign_in_never_enters_the_trail(client, emulator):
    sign_in_staff(client, "viewer", name="Vic Viewer")

    client.post(
        SIGNIN_URL,
        {"provider": "local-userpass", "email": "x@example.com", "password": "no", "name": FORGED},
    )

    event = AuditEvent.objects.filter(action="appservices-signin").latest("id")
    assert event.outcome == "failed"
    assert event.key_name == ""


def test_the_create_answer_and_the_lost_create_list_name_the_key(
    client, emulator, user_credentials
):
    connected(client, user_credentials)
    create_key(client, "named-by-answer")
    emulator.add_fault(route="keys_create", action="drop", when="after", times=1)
    client.post(CREATE_URL, {"name": "named-by-list"}, headers=HTMX)

    names = list(AuditEvent.objects.filter(action="create").order_by("id"))
    assert [(event.outcome, event.key_name) for event in names] == [
        ("ok", "named-by-answer"),
        ("failed", "named-by-list"),  # the list of the same request found it
    ]


# --- The "created moments ago" offer is this session's own form's ------------------------------


def _create_form(client) -> dict:
    return rendered_fields(client.get(KEYS_URL).content.decode(), "create-form")


def test_another_staff_members_replay_of_a_create_form_gets_no_offer(
    client, emulator, user_credentials
):
    connected(client, user_credentials)
    form = {**_create_form(client), "name": "shared-name"}
    assert "secret-panel" in client.post(CREATE_URL, form).content.decode()
    other = FormClient()
    sign_in_staff(other, name="Olly Other")
    connect(other, user_credentials)
    emulator.reset_stats()

    # Another session sends the same form (its nonce) moments later: that key is not its own.
    their_page = other.get(KEYS_URL).content.decode()
    replay = {**form, BINDING_FIELD: rendered_fields(their_page, "create-form")[BINDING_FIELD]}
    emulator.reset_stats()
    page = other.post(CREATE_URL, replay).content.decode()

    assert TWIN not in page and "/delete/" not in page.split('id="create-form"')[1]
    assert "already has a key with that name" in page
    assert emulator.request_count("keys_list") == 0  # no look for a twin at all


def test_another_tabs_fresh_key_of_the_same_name_gets_no_offer(client, emulator, user_credentials):
    connected(client, user_credentials)
    tab_one = _create_form(client)
    tab_two = _create_form(client)
    assert tab_one["form_nonce"] != tab_two["form_nonce"]
    assert "secret-panel" in client.post(CREATE_URL, {**tab_two, "name": "dup"}).content.decode()
    emulator.reset_stats()

    page = client.post(CREATE_URL, {**tab_one, "name": "dup"}).content.decode()

    assert TWIN not in page
    assert "already has a key with that name" in page
    assert emulator.request_count() == 1  # the create alone


def test_a_resent_form_with_another_name_gets_no_offer(client, emulator, user_credentials):
    connected(client, user_credentials)
    form = _create_form(client)
    client.post(CREATE_URL, {**form, "name": "first-name"})
    create_key(client, "second-name")  # made just now, by another form
    emulator.reset_stats()

    page = client.post(CREATE_URL, {**form, "name": "second-name"}).content.decode()

    assert TWIN not in page
    assert "already has a key with that name" in page


def test_a_form_whose_first_sending_met_someone_elses_key_gets_no_offer(
    client, emulator, user_credentials
):
    connected(client, user_credentials)
    create_key(client, "taken")  # someone else's, moments ago
    form = {**_create_form(client), "name": "taken"}
    first = client.post(CREATE_URL, form).content.decode()
    assert TWIN not in first
    emulator.reset_stats()

    second = client.post(CREATE_URL, form).content.decode()

    assert TWIN not in second
    assert emulator.request_count("keys_list") == 0


def test_a_double_submit_arriving_while_the_first_still_works_gets_the_offer(
    client, emulator, user_credentials, monkeypatch
):
    """The first sending's claim is saved before its create goes out, so the second sees it."""
    connected(client, user_credentials)
    form = {**_create_form(client), "name": "in-flight"}
    second: list = []
    real_create = appservices.UserSession.create_api_key

    def create_then_resend(self, name):
        created = real_create(self, name)
        if not second:  # the browser drops this answer and sends the form again
            second.append(client.post(CREATE_URL, form))
        return created

    monkeypatch.setattr(appservices.UserSession, "create_api_key", create_then_resend)

    client.post(CREATE_URL, form)

    page = second[0].content.decode()
    [key] = emulator.keys_of(user_credentials[0])
    assert TWIN in page
    assert f'formaction="/keys/{key["_id"]}/delete/"' in page


# --- Floods stay bounded -----------------------------------------------------------------------


def test_page_views_and_forged_nonces_do_not_grow_the_session(client, emulator, user_credentials):
    connected(client, user_credentials)
    client.get(KEYS_URL)  # shows (and so drops) the "connected" notice
    before = Session.objects.get().session_data
    for _ in range(60):
        client.get(KEYS_URL)
    assert Session.objects.get().session_data == before  # a page view saves nothing
    for number in range(30):
        forged = f"{secrets.token_urlsafe(16)}.{secrets.token_hex(16)}"
        client.post(CREATE_URL, {"name": f"forged-{number}", "form_nonce": forged})

    assert resubmit.SESSION_KEY not in client.session  # no forged nonce was ever claimed


def test_the_claims_kept_are_bounded(client, emulator, user_credentials):
    connected(client, user_credentials)
    for number in range(resubmit.CLAIMS_KEPT + 5):
        page = client.get(KEYS_URL).content.decode()
        nonce = rendered_fields(page, "create-form")["form_nonce"]
        client.post(CREATE_URL, {"name": f"k{number}", "form_nonce": nonce})

    assert len(client.session[resubmit.SESSION_KEY]) == resubmit.CLAIMS_KEPT


def test_a_flood_of_stale_posts_costs_app_services_nothing(
    client, emulator, user_credentials, bob, alice_tab
):
    key_id, alice_page = alice_tab
    forms = forms_of(alice_page, key_id)
    connect(client, bob)
    emulator.reset_stats()

    for _ in range(25):
        for url, fields in forms.values():
            client.post(url, fields, headers=HTMX)

    assert emulator.request_count() == 0
    assert AuditEvent.objects.filter(outcome="denied").count() == 25 * len(forms)


def test_the_plain_client_class_is_what_a_missing_binding_looks_like(emulator, user_credentials):
    """The control for the test client: without the binding every post is refused."""
    plain = connected(Client(), user_credentials)
    emulator.reset_stats()

    response = plain.post(CREATE_URL, {"name": "unbound"})

    assert response.status_code == 409
    assert emulator.request_count() == 0


# --- Every answer says whose keys it is about ----------------------------------------------------


@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain"])
def test_the_secret_panel_names_the_user_and_app(client, emulator, user_credentials, htmx):
    connected(client, user_credentials)

    page = client.post(CREATE_URL, {"name": "whose"}, headers=HTMX if htmx else {})

    panel = visible(page.content.decode().split("data-secret-panel")[1].split("</section>")[0])
    app = settings.APPSERVICES_APP_ID
    assert f"For App Services user {user_credentials[0]} in app {app}" in panel


def test_the_detail_and_delete_pages_name_the_user_and_app(client, emulator, user_credentials):
    connected(client, user_credentials)
    key_id = create_key(client, "whose")
    owner = f"of {user_credentials[0]} in app {settings.APPSERVICES_APP_ID}"

    detail = visible(client.get(key_url(key_id)).content.decode())
    missing = visible(client.get(key_url("0" * 24)).content.decode())
    confirm = visible(client.post(key_url(key_id, "delete"), {"name": "whose"}).content.decode())

    for page in (detail, missing, confirm):
        assert owner in page  # the header says "App Services user …", not this


def test_a_viewer_page_view_writes_no_create_nonce(client, emulator, user_credentials):
    sign_in_staff(client, "viewer", name="Vic Viewer")
    connect(client, user_credentials)

    client.get(KEYS_URL)

    assert resubmit.SESSION_KEY not in client.session


# --- The key table fetched into an old page --------------------------------------------------


def test_the_table_fetched_into_alices_page_is_not_bobs(
    client, emulator, user_credentials, bob, alice_tab
):
    """The list's Retry and "Reload the list" swap the table into a page headed "alice"."""
    _, alice_page = alice_tab
    binding = rendered_fields(alice_page, "create-form")[BINDING_FIELD]
    connect(client, bob)
    create_key(client, "bobs-key")
    emulator.reset_stats()

    response = client.get(KEYS_URL, headers={**HTMX, "X-Keyadmin-Bound-To": binding})

    html = response.content.decode()
    assert response.status_code == 200
    assert STALE.format(
        then=user_credentials[0], now=bob[0], app=settings.APPSERVICES_APP_ID
    ) in visible(html)
    assert "bobs-key" not in html and "<form" not in html
    assert emulator.request_count() == 0


def test_the_table_fetched_without_a_binding_is_refused(client, emulator, user_credentials):
    connected(client, user_credentials)
    create_key(client, "mine")
    emulator.reset_stats()

    response = client.get(KEYS_URL, headers=HTMX, bind=False)

    assert UNBOUND in visible(response.content.decode())
    assert emulator.request_count() == 0
    assert 'data-name="mine"' in client.get(KEYS_URL).content.decode()  # the full page is fine
