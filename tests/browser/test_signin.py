"""Signing in: the staff development sign-in, then App Services, then the keys page."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from keyadmin import appservices
from tests.browser.support import KEYS_URL, SIGNIN_URL


def test_staff_and_app_services_sign_in_lead_to_the_empty_keys_page(
    page, live_server, settings, user_credentials, problems, axe
):
    settings.DEBUG = True
    settings.KEYADMIN_SSO = "dev"
    email, password = user_credentials

    page.goto(live_server.url + KEYS_URL)

    expect(page).to_have_url(live_server.url + "/sign-in/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to keyadmin")
    expect(page.get_by_text("Development sign-in", exact=True)).to_be_visible()
    assert axe() == []
    page.get_by_label("Your name").fill("Sam Support")
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(live_server.url + SIGNIN_URL)
    expect(page.get_by_role("heading", level=1)).to_have_text("Connect to an App Services user")
    expect(page.locator(".staff")).to_have_text("Sam Support")
    assert axe() == []
    page.get_by_role("textbox", name="Email").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()

    expect(page).to_have_url(live_server.url + KEYS_URL)
    expect(page.locator("#notices")).to_contain_text(f"Connected to App Services as {email}")
    expect(page.locator(".who")).to_contain_text(email)
    expect(page.get_by_text("No keys yet. Create the first one above.")).to_be_visible()
    expect(page.locator("#key-count")).to_have_text("0")
    expect(page.locator("#keys-wrap")).to_be_hidden()
    expect(page.locator("#key-filter")).to_be_hidden()
    expect(page.get_by_label("Key name")).to_be_editable()
    assert axe() == []


def test_app_services_sign_in_refuses_a_wrong_password_in_place(
    staff_page, live_server, user_credentials
):
    page = staff_page
    page.goto(live_server.url + SIGNIN_URL)
    page.get_by_role("textbox", name="Email").fill(user_credentials[0])
    page.get_by_label("Password", exact=True).fill("not-the-password")
    page.get_by_role("button", name="Sign in", exact=True).click()

    expect(page.get_by_role("alert")).to_have_text("App Services did not accept those credentials.")
    expect(page.get_by_role("textbox", name="Email")).to_have_value(user_credentials[0])
    expect(page.get_by_label("Password", exact=True)).to_have_value("")  # never sent back


def test_api_key_and_anonymous_sessions_say_why_they_have_no_keys(
    staff_page, live_server, user_credentials
):
    email, password = user_credentials
    tokens = appservices.AppServices().login_email_password(email, password)
    user = appservices.UserSession(tokens.hostname, tokens.refresh_token, tokens.access_token)
    api_key = user.create_api_key("probe").key
    page = staff_page

    page.goto(live_server.url + SIGNIN_URL)
    page.get_by_text("Other ways to sign in").click()
    page.get_by_label("API key", exact=True).fill(api_key)
    page.get_by_role("button", name="Sign in with the API key").click()

    expect(page).to_have_url(live_server.url + KEYS_URL)
    expect(page.get_by_role("heading", name="This session cannot manage API keys")).to_be_visible()
    expect(page.locator("main")).to_contain_text("opened with an API key")
    expect(page.locator("#create-form")).to_have_count(0)
    expect(page.locator("#key-table")).to_have_count(0)
    assert api_key not in page.content()

    page.get_by_role("link", name="Switch user").click()
    page.get_by_text("Other ways to sign in").click()
    page.get_by_role("button", name="Sign in anonymously").click()

    expect(page).to_have_url(live_server.url + KEYS_URL)
    expect(page.get_by_role("heading", name="This session cannot manage API keys")).to_be_visible()
    expect(page.locator("main")).to_contain_text("connected as an anonymous user")
    expect(page.locator("#create-form")).to_have_count(0)
    expect(page.locator("#key-table")).to_have_count(0)
    connect = page.get_by_role("link", name="Connect with email and password")
    expect(connect).to_have_attribute("href", SIGNIN_URL)


def test_a_throttled_sign_in_says_how_long_to_wait_with_and_without_htmx(
    staff_page, live_server, settings, user_credentials, problems
):
    settings.KEYADMIN_SIGNIN_TARGET_LIMIT = 1
    email, _password = user_credentials
    page = staff_page
    page.goto(live_server.url + SIGNIN_URL)

    def guess() -> None:
        page.get_by_role("textbox", name="Email").fill(email)
        page.get_by_label("Password", exact=True).fill("not-the-password")
        page.get_by_role("button", name="Sign in", exact=True).click()

    guess()
    expect(page.get_by_role("alert")).to_have_text("App Services did not accept those credentials.")
    problems.expect("429")  # Chromium logs every 4xx answer
    guess()
    expect(page.get_by_role("alert")).to_have_text(
        re.compile(r"^Too many sign-in attempts\. Try again in \d+ s\.$")
    )

    # The same form sent by htmx: the 429 is swapped (a notice), not dropped as an error.
    problems.expect("429")
    page.evaluate(
        """() => {
            const form = document.querySelector('form input[value="local-userpass"]').form;
            form.setAttribute('hx-post', form.action);
            htmx.process(form);
        }"""
    )
    guess()
    notices = page.locator("#notices")
    expect(notices).to_contain_text(re.compile(r"Too many sign-in attempts\. Try again in \d+ s\."))
    expect(notices).not_to_contain_text("Something went wrong")
