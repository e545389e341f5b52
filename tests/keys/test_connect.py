from __future__ import annotations

from tests.support import (
    KEYS_URL,
    SIGNIN_URL,
    connect,
    connected,
    create_key,
    sign_in_staff,
)


def test_it_shows_the_ways_to_sign_in_and_the_app(client, emulator):
    sign_in_staff(client)

    response = client.get(SIGNIN_URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'value="local-userpass"' in html
    assert 'value="api-key"' in html
    assert 'value="anon-user"' in html
    assert emulator.app_id in html
    assert response["Cache-Control"].count("no-store") == 1


def test_it_connects_with_email_and_password(client, emulator, user_credentials):
    sign_in_staff(client)

    connect(client, user_credentials)

    page = client.get(KEYS_URL).content.decode()
    assert f"Connected to App Services as {user_credentials[0]}." in page
    assert user_credentials[0] in page  # the header says who is connected


def test_it_says_when_app_services_refuses_the_password(client, emulator, user_credentials):
    sign_in_staff(client)
    email, _password = user_credentials

    response = client.post(
        SIGNIN_URL, {"provider": "local-userpass", "email": email, "password": "wrong-password"}
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "did not accept those credentials" in html
    assert f'value="{email}"' in html
    assert "wrong-password" not in html


def test_it_checks_the_form_before_asking_app_services(client, emulator):
    sign_in_staff(client)
    emulator.reset_stats()

    response = client.post(SIGNIN_URL, {"provider": "local-userpass", "email": "nope"})

    assert response.status_code == 200
    assert 'aria-invalid="true"' in response.content.decode()
    assert emulator.request_count() == 0


def test_it_opens_an_api_key_session_that_cannot_manage_keys(client, emulator, user_credentials):
    connected(client, user_credentials)
    response = client.post("/keys/new/", {"name": "for-login"})
    secret = response.content.decode().split('class="secret-value" translate="no">')[1]
    secret = secret.split("<")[0]
    client.logout()
    sign_in_staff(client, name="Alex")

    response = client.post(SIGNIN_URL, {"provider": "api-key", "key": secret})
    emulator.reset_stats()
    page = client.get(KEYS_URL)

    assert response.status_code == 302
    assert "opened with an API key" in page.content.decode()
    assert 'id="create-form"' not in page.content.decode()
    assert emulator.request_count() == 0


def test_it_opens_an_anonymous_session_that_cannot_manage_keys(client, emulator):
    sign_in_staff(client)

    response = client.post(SIGNIN_URL, {"provider": "anon-user"})
    page = client.get(KEYS_URL).content.decode()

    assert response.status_code == 302
    assert "Anonymous users cannot have API keys" in page
    assert 'id="key-table"' not in page


def test_it_reports_app_services_down_in_place(client, emulator, user_credentials):
    sign_in_staff(client)
    emulator.add_fault(route="login", action="status", status=503)
    email, password = user_credentials

    response = client.post(
        SIGNIN_URL, {"provider": "local-userpass", "email": email, "password": password}
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="banner banner-error" role="alert"' in html
    assert f'value="{email}"' in html


def test_it_reports_an_html_error_page_in_place(client, emulator, user_credentials):
    sign_in_staff(client)
    emulator.add_fault(route="login", action="html")
    email, password = user_credentials

    response = client.post(
        SIGNIN_URL, {"provider": "local-userpass", "email": email, "password": password}
    )

    assert response.status_code == 200
    assert "error page" in response.content.decode()


def test_it_keeps_the_other_ways_open_when_they_failed(client, emulator):
    sign_in_staff(client)

    response = client.post(SIGNIN_URL, {"provider": "api-key", "key": "not-a-key"})

    assert response.status_code == 200
    assert '<details class="card other-ways" open>' in response.content.decode()


def test_it_hides_posted_secrets_from_error_reports(client, emulator, user_credentials):
    sign_in_staff(client)
    email, password = user_credentials

    response = client.post(
        SIGNIN_URL, {"provider": "local-userpass", "email": email, "password": password}
    )

    assert response.wsgi_request.sensitive_post_parameters == "__ALL__"


def test_it_disconnects_and_revokes_upstream(client, emulator, user_credentials):
    connected(client, user_credentials)
    create_key(client, "kept")
    emulator.reset_stats()

    response = client.post("/appservices/sign-out/")

    assert response.status_code == 302
    assert response["Location"] == SIGNIN_URL
    assert emulator.request_count("session_logout") == 1
    assert client.get(KEYS_URL)["Location"] == SIGNIN_URL


def test_it_requires_staff_sign_in(client, emulator, settings):
    settings.DEBUG = True
    settings.KEYADMIN_SSO = "dev"

    assert client.get(SIGNIN_URL)["Location"] == "/sign-in/"
    assert client.get("/appservices/sign-out/").status_code == 405
