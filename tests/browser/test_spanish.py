"""The main flow in Spanish: a browser that asks for Spanish (Accept-Language: es) gets it.

Staff sign-in (development mode), App Services sign-in, create a key, disable it; then the
picture for docs/screenshot-es.png, with the secret panel dismissed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ROOT

# The docs picture is refreshed only when asked (make screenshots), so a test run leaves the
# checkout clean; otherwise it goes to a scratch file.
SCREENSHOT = (
    ROOT / "docs" / "screenshot-es.png"
    if os.environ.get("KEYADMIN_UPDATE_SCREENSHOTS")
    else Path(tempfile.gettempdir()) / "screenshot-es.png"
)
EMAIL, PASSWORD = "lucia@example.com", "captura-de-pantalla"


@pytest.fixture
def browser_context_args(browser_context_args):
    # Chromium sends `Accept-Language: es-ES,es;q=0.9` and reports navigator.language "es-ES".
    return {**browser_context_args, "locale": "es-ES", "viewport": {"width": 1200, "height": 800}}


def test_the_main_flow_in_spanish(page, live_server, settings, emulator, problems, axe):
    settings.DEBUG = True
    settings.KEYADMIN_SSO = "dev"
    emulator.create_user(EMAIL, PASSWORD)  # fixed names: the picture changes only when the UI does

    page.goto(live_server.url + "/keys/")

    expect(page).to_have_url(live_server.url + "/sign-in/")
    assert page.locator("html").get_attribute("lang") == "es"
    expect(page.get_by_role("heading", level=1)).to_have_text("Iniciar sesión en keyadmin")
    expect(page.get_by_text("Inicio de sesión de desarrollo", exact=True)).to_be_visible()
    page.get_by_label("Tu nombre").fill("Lucía Soporte")
    page.get_by_role("button", name="Iniciar sesión").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Conectar con un usuario de App Services"
    )
    page.get_by_role("textbox", name="Correo electrónico").fill(EMAIL)
    page.get_by_label("Contraseña", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Iniciar sesión", exact=True).click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Claves de API")
    expect(page.locator("#notices")).to_contain_text(
        f"Conexión establecida con App Services como {EMAIL}"
    )
    expect(page.get_by_text("Todavía no hay claves. Crea la primera aquí arriba.")).to_be_visible()
    assert axe() == []

    name = page.get_by_label("Nombre de la clave")
    name.fill("despliegue nocturno")
    expect(page.locator("#name-check")).to_have_text(
        "No permitido en el nombre de una clave: “espacio”"
    )
    name.fill("despliegue-nocturno")
    expect(page.locator("#name-check")).to_have_text("El nombre está libre.")
    page.locator("#create-form").get_by_role("button", name="Crear clave").click()

    panel = page.locator("[data-secret-panel]")
    expect(panel.get_by_role("heading")).to_have_text(
        "Clave “despliegue-nocturno” creada: copia su secreto ahora"
    )
    expect(panel).to_contain_text("Este secreto no se volverá a mostrar.")
    expect(panel.get_by_text("Mostrar secreto")).to_be_visible()
    panel.get_by_role("button", name="Ya lo he guardado").click()
    expect(panel).to_have_count(0)

    row = page.locator('#key-rows > tr[data-name="despliegue-nocturno"]')
    expect(row.locator(".badge")).to_have_text("Habilitada")
    row.get_by_role("button", name="Deshabilitar despliegue-nocturno", exact=True).click()

    expect(row.locator(".badge")).to_have_text("Deshabilitada")
    expect(row.get_by_role("button", name="Habilitar despliegue-nocturno")).to_be_visible()
    notice = page.locator("#notices .notice")
    expect(notice.locator("p")).to_have_text(
        f"Clave “despliegue-nocturno” de {EMAIL} (app {settings.APPSERVICES_APP_ID}) "
        "deshabilitada: ya no puede iniciar sesión."
    )
    expect(notice.get_by_role("button", name="Cerrar")).to_be_visible()
    assert emulator.keys_of(EMAIL)[0]["disabled"] is True
    expect(page.locator(".lang [aria-current]")).to_have_text("Español")
    assert axe() == []

    page.evaluate("document.activeElement.blur()")
    page.mouse.move(0, 0)
    page.screenshot(path=SCREENSHOT, full_page=True, animations="disabled", caret="hide")
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
