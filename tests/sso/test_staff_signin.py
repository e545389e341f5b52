from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from keyadmin.models import AuditEvent
from keyadmin.sso.roles import roles_of
from tests.support import HTMX, KEYS_URL

URL = "/sign-in/"


@pytest.fixture
def dev_mode(settings):
    settings.DEBUG = True
    settings.KEYADMIN_SSO = "dev"


def test_it_shows_the_development_sign_in_with_its_banner(client, dev_mode):
    response = client.get(URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="dev-banner"' in html
    assert 'name="name"' in html


def test_it_signs_in_and_goes_to_the_keys(client, dev_mode):
    response = client.post(URL, {"name": "Sam Support"})

    assert response.status_code == 302
    assert response["Location"] == KEYS_URL
    assert get_user_model().objects.get(username="dev:Sam Support").first_name == "Sam Support"


def test_it_signs_in_with_the_chosen_roles(client, dev_mode):
    client.post(URL, {"name": "Vic Viewer", "roles": ["viewer"]})
    client.post(URL, {"name": "Ada Admin"})

    users = get_user_model().objects
    assert roles_of(users.get(username="dev:Vic Viewer")) == {"viewer"}
    assert roles_of(users.get(username="dev:Ada Admin")) == {
        "viewer",
        "operator",
        "auditor",
        "act_for",
    }


def test_it_follows_a_local_next_only(client, dev_mode):
    local = client.post(URL, {"name": "Sam", "next": "/keys/?q=ci"})
    client.logout()
    offsite = client.post(URL, {"name": "Sam", "next": "https://evil.example/"})

    assert local["Location"] == "/keys/?q=ci"
    assert offsite["Location"] == KEYS_URL


def test_it_rejects_a_blank_name(client, dev_mode):
    response = client.post(URL, {"name": "  "})

    assert response.status_code == 200
    assert 'aria-invalid="true"' in response.content.decode()


def test_it_answers_403_when_no_sign_in_method_is_configured(client, settings):
    settings.DEBUG = False
    settings.KEYADMIN_SSO = ""

    response = client.get(URL)

    assert response.status_code == 403
    assert "No sign-in method configured" in response.content.decode()
    assert client.post(URL, {"name": "Mallory"}).status_code == 403
    assert not get_user_model().objects.exists()


def test_it_refuses_the_dev_sign_in_without_debug(client, settings):
    settings.DEBUG = False
    settings.KEYADMIN_SSO = "dev"

    assert client.post(URL, {"name": "Mallory"}).status_code == 403
    assert not get_user_model().objects.exists()


def test_it_keeps_every_page_closed_without_a_sign_in_method(client, settings):
    settings.KEYADMIN_SSO = ""

    response = client.get(KEYS_URL)

    assert response.status_code == 403
    assert "No sign-in method configured" in response.content.decode()


def test_it_sends_signed_out_staff_to_sign_in(client, dev_mode):
    assert client.get(KEYS_URL)["Location"] == URL
    assert client.get(KEYS_URL, headers=HTMX)["HX-Redirect"] == URL


def test_it_rejects_other_methods(client, dev_mode):
    assert client.put(URL).status_code == 405


def test_sign_ins_past_the_limit_get_429_and_open_no_session(client, dev_mode, settings):
    settings.KEYADMIN_DEV_SIGNIN_LIMIT = 3

    answers = [client.post(URL, {"name": f"Guess {n}"}) for n in range(6)]

    assert [answer.status_code for answer in answers] == [302] * 3 + [429] * 3
    html = answers[-1].content.decode()
    assert f"Too many sign-in attempts. Try again in {answers[-1]['Retry-After']} s." in html
    assert 0 < int(answers[-1]["Retry-After"]) <= settings.KEYADMIN_SIGNIN_WINDOW_SECONDS
    assert 'role="alert"' in html
    assert not get_user_model().objects.filter(username__in=["dev:Guess 3", "dev:Guess 5"])
    still = get_user_model().objects.get(username="dev:Guess 2")
    assert client.session["_auth_user_id"] == str(still.pk)  # the last sign-in let through
    assert AuditEvent.objects.filter(action="throttled").count() == 1
    assert AuditEvent.objects.filter(action="signin").count() == 3


def test_the_limit_is_per_client_address(client, dev_mode, settings):
    settings.KEYADMIN_DEV_SIGNIN_LIMIT = 2
    for n in range(3):
        client.post(URL, {"name": f"Guess {n}"})

    elsewhere = client.post(URL, {"name": "Sam"}, REMOTE_ADDR="192.0.2.7")

    assert elsewhere.status_code == 302
    assert client.post(URL, {"name": "Sam"}).status_code == 429
