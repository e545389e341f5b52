"""Helpers for the view tests (no tests here): a staff member, an App Services connection, keys.

Plain functions rather than fixtures, so each view test file imports what it uses.
"""

from __future__ import annotations

import html
import re
from types import SimpleNamespace

from django.conf import settings
from django.test import Client
from django.urls import reverse

from keyadmin import appsfile
from keyadmin.appservices.connection import SESSION_KEY
from keyadmin.keys.guards import BINDING_FIELD, BINDING_HEADER, form_binding
from tests.sso.staff import provision_staff

HTMX = {"HX-Request": "true"}
SIGNIN_URL = "/appservices/sign-in/"
KEYS_URL = "/keys/"
CREATE_URL = "/keys/new/"

# A JWT's header and payload are both JSON objects, so both start "eyJ". Random base64 (a nonce,
# a Fernet token) holds "eyJ" by chance about once in 260,000 characters; two dotted parts that
# both start with it are no chance.
JWT_IN_CLEAR = re.compile(r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.")


def holds_jwt(text: str) -> bool:
    """Whether `text` holds a JWT in clear (an App Services access or refresh token)."""
    return bool(JWT_IN_CLEAR.search(text))


def sign_in_staff(client, *roles: str, name: str = "Sam Support") -> None:
    """Sign `client` in as a staff member with `roles` (all by default); needs `staff_sso`."""
    provision_staff(client, *roles, name=name)


def connect(client, credentials: tuple[str, str]) -> None:
    """Sign the staff client in to App Services with email and password, through the view."""
    email, password = credentials
    response = client.post(
        SIGNIN_URL, {"provider": "local-userpass", "email": email, "password": password}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == reverse("keyadmin:keys")


def connected(client, credentials: tuple[str, str]):
    sign_in_staff(client)
    connect(client, credentials)
    return client


def connected_anonymously(client, emulator) -> None:
    """A staff client connected to App Services as an anonymous user (who cannot have keys)."""
    sign_in_staff(client)
    assert client.post(SIGNIN_URL, {"provider": "anon-user"}).status_code == 302
    emulator.reset_stats()


def connected_with_key(client, emulator, credentials, name: str = "ci-runner") -> str:
    """A connected staff client whose user has one key; upstream counts start at zero."""
    connected(client, credentials)
    key_id = create_key(client, name)
    emulator.reset_stats()
    return key_id


def create_key(client, name: str) -> str:
    """Create a key through the htmx create view; return its id."""
    response = client.post(CREATE_URL, {"name": name}, headers=HTMX)
    assert response.status_code == 200
    found = re.search(r'id="key-([0-9a-f]{24})"', response.content.decode())
    assert found, response.content.decode()[:2000]
    return found.group(1)


def key_url(key_id: str, action: str = "") -> str:
    return f"/keys/{key_id}/{action + '/' if action else ''}"


def row_post(key_id: str, name: str, disabled: bool = False, **extra) -> dict:
    return {"name": name, "disabled": "true" if disabled else "false", **extra}


def of(email: str) -> str:
    """How a notice names the App Services user and app a key belongs to."""
    return f"of {email} (app {settings.APPSERVICES_APP_ID})"


def current_binding(client) -> str:
    """The form binding a page rendered now would carry (the client's current connection)."""
    stored = client.session.get(SESSION_KEY)
    if not isinstance(stored, dict):
        return ""
    acting = stored.get("acting")
    acting = SimpleNamespace(**acting) if isinstance(acting, dict) else None
    return form_binding(SimpleNamespace(**{**stored, "acting": acting}))


def opened_form(client, page: str, key_id: str, form: str, headers=None) -> str:
    """The answer to a row's "note" or "rotate" button in `page` (its link: with `headers=HTMX`
    as htmx fetches it, else the page a browser without JavaScript opens)."""
    row = re.search(rf'<tr id="key-{key_id}".*?</tr>', page, flags=re.DOTALL).group(0)
    link = re.search(rf'href="(/keys/{key_id}/{form}/[^"]*)"', row)
    assert link, row
    response = client.get(html.unescape(link.group(1)), headers=headers)
    assert response.status_code == 200
    return response.content.decode()


class FormClient(Client):
    """The test client sending as a page rendered just now would: with the form binding.

    It adds the binding to posted forms, and to htmx GETs as the page's fragment requests send
    it (a header). A test about what a page rendered earlier (another tab) sends gives it
    itself; `bind=False` sends exactly what is given.
    """

    def post(self, path, data=None, *args, bind: bool = True, **kwargs):
        if bind and isinstance(data, dict) and BINDING_FIELD not in data:
            data = {**data, BINDING_FIELD: current_binding(self)}
        return super().post(path, data, *args, **kwargs)

    def get(self, path, data=None, *args, bind: bool = True, headers=None, **kwargs):
        headers = dict(headers or {})
        if bind and "HX-Request" in headers and BINDING_HEADER not in headers:
            headers[BINDING_HEADER] = current_binding(self)
        return super().get(path, data, *args, headers=headers, **kwargs)


def rendered_fields(html: str, form_id: str | None = None) -> dict[str, str]:
    """The hidden fields of the first form in `html` (or of the form with id `form_id`)."""
    if form_id is not None:
        html = html.split(f'id="{form_id}"', 1)[1]
    form = html.split("</form>", 1)[0]
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))


def point_keyadmin_at(settings, base_url: str, allowed_hosts: list[str] | None = None) -> None:
    """Serve the single app of the APPSERVICES_* settings at `base_url`, as without an apps file."""
    hosts = allowed_hosts or ["127.0.0.1"]
    settings.APPSERVICES_BASE_URL = base_url
    settings.APPSERVICES_ALLOWED_HOSTS = hosts
    settings.KEYADMIN_APPS = (
        appsfile.single_app(
            base_url=base_url,
            app_id=settings.APPSERVICES_APP_ID,
            allowed_hosts=hosts,
            bridge_audience=settings.KEYADMIN_BRIDGE_AUDIENCE,
        ),
    )
