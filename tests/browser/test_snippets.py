"""The secret panel's snippets in the browser: each Copy puts the exact filled-in text on the
clipboard, "Download as .env" makes the file in the page, and dismissing the panel leaves the
secret nowhere: not in the DOM, a blob URL, web storage, IndexedDB, Cache Storage or htmx history.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from playwright.sync_api import expect

from tests.browser.conftest import TIMEOUT_MS, give_session
from tests.browser.support import (
    STORAGE,
    create_button,
    create_in_browser,
    deny_clipboard,
    live_history,
    live_texts,
    open_keys,
    record_live_regions,
    row,
    secret_panel,
)

# Every object URL the page makes and revokes, recorded before any page script runs.
RECORD_BLOB_URLS = """
    window.__blobUrls = {made: [], revoked: []};
    const make = URL.createObjectURL.bind(URL), revoke = URL.revokeObjectURL.bind(URL);
    URL.createObjectURL = (blob) => {
        const url = make(blob);
        window.__blobUrls.made.push(url);
        return url;
    };
    URL.revokeObjectURL = (url) => { window.__blobUrls.revoked.push(url); revoke(url); };
"""
BROWSER_STORES = """async () => JSON.stringify({
    local: {...localStorage},
    session: {...sessionStorage},
    indexedDB: await indexedDB.databases(),
    caches: await caches.keys(),
})"""


def expected_snippets(secret: str) -> dict[str, str]:
    app = settings.KEYADMIN_APPS[0]
    return {
        "the environment variable": f"APP_SERVICES_API_KEY={secret}",
        "the realm-web code": (
            f'const app = new Realm.App({{ id: "{app.app_id}", baseUrl: "{app.base_url}" }});\n'
            f'const user = await app.logIn(Realm.Credentials.apiKey("{secret}"));'
        ),
        "the curl command": (
            f"curl -X POST '{app.base_url}/api/client/v2.0/app/{app.app_id}"
            "/auth/providers/api-key/login' \\\n"
            "  -H 'Content-Type: application/json' \\\n"
            f"""  -d '{{"key": "{secret}"}}'"""
        ),
    }


def open_snippets(page) -> None:
    secret_panel(page).get_by_text(
        "Ready to paste: an env line, realm-web, curl, a .env file"
    ).click()


def test_each_copy_puts_the_filled_snippet_on_the_clipboard(keys_page, live_server, emulator, axe):
    page = open_keys(keys_page, live_server)
    secret = create_in_browser(page, "deploy-bot")
    panel = secret_panel(page)
    snippets = panel.locator("[data-secret-snippets]")
    expect(snippets.locator("figure").first).to_be_hidden()  # closed until asked for
    open_snippets(page)
    expect(snippets.get_by_role("figure")).to_have_count(3)
    # masked like the secret itself: the page holds it once, in the panel's own <code>
    expect(snippets.locator(".snippet-mask").first).to_be_visible()
    assert page.content().count(secret) == 1
    assert axe() == []
    emulator.reset_stats()
    record_live_regions(page)

    for name, text in expected_snippets(secret).items():
        page.evaluate("navigator.clipboard.writeText('')")
        snippets.get_by_role("button", name=f"Copy {name}", exact=True).click()
        expect(page.locator("#live")).to_have_text("Copied")
        assert page.evaluate("navigator.clipboard.readText()") == text
        page.locator("#live").evaluate("el => { el.textContent = ''; }")

    assert page.content().count(secret) == 1  # copying filled a detached copy, not the page
    expect(panel.locator(".secret-value")).to_be_hidden()
    assert all(secret not in text for text in live_texts(page) + live_history(page))
    assert emulator.request_count() == 0


def test_show_secret_fills_the_snippets_and_hide_empties_them(keys_page, live_server):
    page = open_keys(keys_page, live_server)
    secret = create_in_browser(page, "shown")
    panel = secret_panel(page)
    env = panel.locator("code[id^=snippet-env-]")

    open_snippets(page)
    panel.get_by_text("Show secret").click()
    expect(env).to_have_text(f"APP_SERVICES_API_KEY={secret}", use_inner_text=True)
    expect(env.locator(".snippet-mask")).to_be_hidden()
    panel.get_by_text("Hide secret").click()
    expect(env.locator(".snippet-mask")).to_be_visible()
    assert page.content().count(secret) == 1


def test_download_makes_the_env_file_in_the_page_and_revokes_its_url(
    keys_page, live_server, emulator
):
    keys_page.add_init_script(RECORD_BLOB_URLS)
    page = open_keys(keys_page, live_server)
    secret = create_in_browser(page, "env-file")
    emulator.reset_stats()
    requests = []
    page.on("request", lambda request: requests.append(request.url))

    open_snippets(page)
    with page.expect_download() as download_info:
        secret_panel(page).get_by_role("button", name="Download as .env").click()

    download = download_info.value
    assert download.suggested_filename == f"{settings.KEYADMIN_APPS[0].app_id}.env"
    with open(download.path(), encoding="utf-8") as saved:
        assert saved.read() == f"APP_SERVICES_API_KEY={secret}\n"
    urls = page.evaluate("window.__blobUrls")
    assert len(urls["made"]) == 1 and urls["made"][0].startswith("blob:")
    assert urls["revoked"] == urls["made"]
    assert all(not url.startswith("http") for url in requests)  # no round trip to the server
    assert emulator.request_count() == 0
    expect(page.locator("#live")).to_have_text("The .env file was made in your browser.")
    assert not page.locator("[data-secret-panel] a[download]").count()


def test_after_dismiss_the_secret_is_nowhere_in_the_browser(keys_page, live_server):
    keys_page.add_init_script(RECORD_BLOB_URLS)
    page = open_keys(keys_page, live_server)
    secret = create_in_browser(page, "dismissed")
    panel = secret_panel(page)
    open_snippets(page)
    panel.get_by_text("Show secret").click()  # the snippets hold it too now
    panel.get_by_role("button", name="Copy the curl command").click()
    with page.expect_download():
        panel.get_by_role("button", name="Download as .env").click()

    panel.get_by_role("button", name="I have stored it").click()

    expect(secret_panel(page)).to_have_count(0)
    expect(page.locator("[data-secret-snippets], [data-secret-slot]")).to_have_count(0)
    assert secret not in page.content()
    assert secret not in page.evaluate("document.documentElement.outerHTML")
    assert secret not in page.evaluate(BROWSER_STORES)
    urls = page.evaluate("window.__blobUrls")
    assert urls["revoked"] == urls["made"] != []

    # htmx history: away and Back again brings neither the panel nor the secret
    row(page, "dismissed").get_by_role("link", name="dismissed", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Key “dismissed”")
    page.go_back()
    expect(row(page, "dismissed")).to_be_visible()
    assert secret not in page.content()
    assert secret not in page.evaluate(BROWSER_STORES)
    assert secret not in page.evaluate(STORAGE)


def test_a_refused_clipboard_shows_and_selects_the_filled_snippet(keys_page, live_server):
    page = open_keys(keys_page, live_server)
    secret = create_in_browser(page, "no-clipboard")
    panel = secret_panel(page)
    refusal = deny_clipboard(page)
    record_live_regions(page)
    open_snippets(page)

    panel.get_by_role("button", name="Copy the environment variable").click()

    expect(panel.get_by_text("Your browser did not allow copying.")).to_be_visible()
    expect(panel.locator(".secret-value")).to_be_visible()
    selected = page.evaluate("window.getSelection().toString()").strip()
    assert selected == f"APP_SERVICES_API_KEY={secret}"
    expect(page.locator("#live")).to_have_text(
        "Copying was blocked. The text is selected: press Ctrl+C (⌘C on a Mac)."
    )
    assert all(secret not in text for text in live_texts(page) + live_history(page))
    refusal.detach()


@pytest.fixture
def no_js_page(browser, live_server, connected_client, problems):
    context = browser.new_context(java_script_enabled=False)
    context.set_default_timeout(TIMEOUT_MS)
    give_session(context, live_server, connected_client)
    page = context.new_page()
    problems.watch(page)
    yield page
    context.close()


def test_without_javascript_the_snippets_stay_hidden_and_the_secret_shows(no_js_page, live_server):
    page = open_keys(no_js_page, live_server)
    page.get_by_label("Key name").fill("no-js-bot")
    create_button(page).click()

    panel = page.locator("[data-secret-panel]")
    expect(page).to_have_title("Key created · keyadmin")
    panel.get_by_text("Show secret").click()
    expect(panel.locator(".secret-value")).to_be_visible()
    expect(panel.locator("[data-secret-snippets]")).to_be_hidden()
    expect(panel.get_by_role("button", name="Download as .env")).to_be_hidden()


def test_the_snippets_speak_spanish(live_server, browser, connected_client, problems):
    """Fails until the Spanish strings of /work/tools/tr-snippets.json are in the catalogue."""
    context = browser.new_context(locale="es-ES", permissions=["clipboard-read", "clipboard-write"])
    context.set_default_timeout(TIMEOUT_MS)
    give_session(context, live_server, connected_client)
    page = context.new_page()
    problems.watch(page)
    page.goto(live_server.url + "/keys/")
    page.get_by_label("Nombre de la clave").fill("es-bot")
    page.locator("#create-form").get_by_role("button", name="Crear clave").click()

    snippets = page.locator("[data-secret-snippets]")
    snippets.get_by_text(
        "Listo para pegar: una línea de entorno, realm-web, curl, un archivo .env"
    ).click()
    for name in ("la variable de entorno", "el código de realm-web", "la orden curl"):
        expect(snippets.get_by_role("button", name=f"Copiar {name}", exact=True)).to_be_visible()
    expect(snippets.get_by_role("button", name="Descargar como .env")).to_be_visible()
    context.close()
