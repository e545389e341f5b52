from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

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
