"""A lost create: App Services made the key but its answer never arrived.

keyadmin then makes ONE list request for the name it asked for. Found: the key exists and its
secret is lost, so it says so and offers a one-click delete (htmx, and a plain-POST fallback).
Not found: the key was not created and the form can be sent again. The list failing as well:
keep saying the key may exist. Faults come from the local App Services server's controls.
"""

from __future__ import annotations

import html as htmllib
import re
import time

import pytest

from keyadmin.keys import views as keys_views
from keyadmin.models import AuditEvent
from tests.support import CREATE_URL, HTMX, KEYS_URL, connected, create_key, of

NAME = "ci-runner"
LOST = f"Key “{NAME}” was created but its secret was lost in transit."
LOST_MORE = "It cannot be shown again. Delete it and create a new one."

# The key is made and committed upstream, then its answer is lost.
LOST_AFTER = [
    pytest.param({"action": "delay", "delay_ms": 1500}, id="read-timeout"),
    pytest.param({"action": "drop"}, id="dropped-connection"),
    pytest.param({"action": "html", "status": 502}, id="502-after"),
    pytest.param({"action": "status", "status": 500}, id="500-after"),
    pytest.param({"action": "malformed", "status": 201}, id="truncated-answer"),
]


def visible(html: str) -> str:
    return htmllib.unescape(" ".join(re.sub(r"<[^>]+>", " ", html).split()))


@pytest.fixture
def lost(client, emulator, user_credentials, settings):
    connected(client, user_credentials)
    settings.APPSERVICES_TIMEOUT = (1, 0.5)  # the read-timeout fault answers after 1.5 s
    emulator.reset_stats()
    return client


@pytest.mark.parametrize("fault", LOST_AFTER)
def test_htmx_finds_the_orphan_with_one_list_and_deletes_it_in_one_click(
    lost, emulator, user_credentials, fault
):
    email = user_credentials[0]
    emulator.add_fault(route="keys_create", when="after", times=1, **fault)

    response = lost.post(CREATE_URL, {"name": NAME}, headers=HTMX)

    assert response.status_code == 200
    assert emulator.request_count("keys_create") == 1
    assert emulator.request_count("keys_list") == 1
    assert emulator.request_count() == 2  # create 1 + list 1, nothing else
    [key] = emulator.keys_of(email)
    assert key["name"] == NAME
    html = response.content.decode()
    text = visible(html)
    assert LOST in text and LOST_MORE in text
    assert "secret-panel" not in html and "may have created" not in text
    # The form (main swap) carries the notice and its one-click delete...
    assert html.lstrip().startswith('<form id="create-form"')
    delete_url = f"/keys/{key['_id']}/delete/"
    assert f'data-lost-key="{key["_id"]}"' in html
    # Enter in the name field presses the first submit button: "Create key", never Delete.
    assert html.index("Create key</button>") < html.index(f'formaction="{delete_url}"')
    assert f'hx-post="{delete_url}"' in html
    assert f'hx-target="#key-{key["_id"]}"' in html
    assert "&quot;confirm&quot;: &quot;1&quot;" in html or '"confirm": "1"' in html
    # ...and the orphan's row goes into the table out of band.
    assert '<template><tbody hx-swap-oob="beforeend:#key-rows">' in html
    assert f'<tr id="key-{key["_id"]}"' in html
    event = AuditEvent.objects.filter(action="create").latest("id")
    assert (event.outcome, event.key_id) == ("failed", key["_id"])
    assert "key exists, secret lost" in event.detail

    # The click: what htmx sends (the form's fields, overridden by hx-vals).
    emulator.reset_stats()
    gone = lost.post(delete_url, {"name": NAME, "confirm": "1", "disabled": "false"}, headers=HTMX)

    assert gone.status_code == 200
    assert emulator.request_count() == 1
    assert emulator.keys_of(email) == []
    assert f"Key “{NAME}” {of(email)} deleted." in visible(gone.content.decode())


@pytest.mark.parametrize("fault", LOST_AFTER)
def test_without_javascript_the_page_says_so_and_its_button_deletes(
    lost, emulator, user_credentials, fault
):
    email = user_credentials[0]
    emulator.add_fault(route="keys_create", when="after", times=1, **fault)

    response = lost.post(CREATE_URL, {"name": NAME})

    assert response.status_code == 200
    assert emulator.request_count() == 2
    [key] = emulator.keys_of(email)
    html = response.content.decode()
    assert "<html" in html
    notice = html.split("data-lost-key=")[1].split("</div>")[0]
    assert "hx-post" not in notice  # htmx is for the page with the table, not this one
    text = visible(html)
    assert LOST in text and LOST_MORE in text
    # The Delete button submits the create form to the delete route with confirm=1.
    delete_url = f"/keys/{key['_id']}/delete/"
    assert re.search(
        rf'<button type="submit" class="btn btn-danger" formaction="{delete_url}" '
        r'formnovalidate name="confirm" value="1"',
        html,
    )
    form_fields = dict(
        re.findall(r'<input type="(?:hidden|text)" name="(\w+)"[^>]*value="([^"]*)"', html)
    )
    assert form_fields["name"] == NAME

    emulator.reset_stats()
    gone = lost.post(delete_url, {"name": form_fields["name"], "confirm": "1"})

    assert gone.status_code == 302 and gone["Location"] == KEYS_URL
    assert emulator.request_count() == 1
    assert emulator.keys_of(email) == []
    assert f"Key “{NAME}” {of(email)} deleted." in visible(lost.get(KEYS_URL).content.decode())


@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain"])
@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ({"action": "status", "status": 500}, "the key was not created"),
        ({"action": "html", "status": 502}, "the key was not created"),
        ({"action": "malformed", "status": 201}, "the key was not created"),
        ({"action": "drop"}, "so it was most likely not created"),
    ],
)
def test_when_no_key_has_the_name_the_form_can_be_sent_again(
    lost, emulator, user_credentials, htmx, fault, says
):
    emulator.add_fault(route="keys_create", times=1, **fault)  # before: nothing is made

    response = lost.post(CREATE_URL, {"name": NAME}, headers=HTMX if htmx else {})

    assert response.status_code == 200
    assert emulator.request_count() == 2
    assert emulator.keys_of(user_credentials[0]) == []
    text = visible(response.content.decode())
    assert f"App Services has no key named “{NAME}”" in text and says in text
    assert "press “Create key” to try again" in text
    assert "hx-swap-oob" not in response.content.decode()
    assert 'value="ci-runner"' in response.content.decode()

    again = lost.post(CREATE_URL, {"name": NAME}, headers=HTMX)  # the resubmission works

    assert "secret-panel" in again.content.decode()
    assert len(emulator.keys_of(user_credentials[0])) == 1


@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain"])
def test_when_the_list_fails_too_it_keeps_saying_the_key_may_exist(
    lost, emulator, user_credentials, htmx
):
    emulator.add_fault(route="keys_create", action="html", status=502, when="after", times=1)
    emulator.add_fault(route="keys_list", action="status", status=503, times=1)

    response = lost.post(CREATE_URL, {"name": NAME}, headers=HTMX if htmx else {})

    assert response.status_code == 200
    assert emulator.request_count("keys_create") == 1
    assert emulator.request_count("keys_list") == 1
    text = visible(response.content.decode())
    assert "App Services may have created the key, but its answer was lost" in text
    assert "Reload the list of keys" in text
    assert len(emulator.keys_of(user_credentials[0])) == 1  # it does exist: the list was wrong


def test_a_key_named_so_before_the_request_is_not_called_an_orphan(
    lost, emulator, user_credentials, monkeypatch
):
    """A lost answer may have been a 409: an older key with the name is not ours to delete."""
    create_key(lost, NAME)
    # As if this request were sent ten minutes after the key was made.
    monkeypatch.setattr(keys_views, "_clock", lambda: time.time() + 600)
    emulator.add_fault(route="keys_create", action="html", status=502, times=1)
    emulator.reset_stats()

    response = lost.post(CREATE_URL, {"name": NAME}, headers=HTMX)

    assert emulator.request_count() == 2
    html = response.content.decode()
    assert "already has a key with that name" in html
    assert 'id="id_name_error"' in html
    assert "data-lost-key" not in html and "/delete/" not in html
    assert len(emulator.keys_of(user_credentials[0])) == 1


def test_a_session_ended_during_the_look_keeps_the_careful_message(
    lost, emulator, user_credentials
):
    emulator.add_fault(route="keys_create", action="drop", when="after", times=1)
    emulator.add_fault(route="keys_list", action="status", status=401, times=1)

    response = lost.post(CREATE_URL, {"name": NAME}, headers=HTMX)

    assert response.status_code == 200
    assert "may have created the key" in visible(response.content.decode())
    assert emulator.request_count() == 2
