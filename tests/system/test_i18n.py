"""Spanish: every string a person sees is translatable, translated, and served to who asks for it.

The catalog checks need GNU gettext (msgfmt, msgen), which `make test` and .ci/run install.
"""

from __future__ import annotations

import gettext
import html.parser
import os
import re
import shutil
import subprocess
import sys

import pytest
from django.test import Client

from tests.conftest import ROOT
from tests.sso.staff import as_staff

PO = ROOT / "locale" / "es" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
TEMPLATES = ROOT / "templates"


def run(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{args[0]} failed:\n{result.stderr[-3000:]}"
    return result


def catalog(mo_path) -> dict:
    with open(mo_path, "rb") as mo:
        return gettext.GNUTranslations(mo)._catalog


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> set:
    """Every msgid in templates/ and keyadmin/ now: makemessages on a copy, made into a .mo."""
    work = tmp_path_factory.mktemp("makemessages")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "templates", work / "templates", ignore=ignore)
    shutil.copytree(ROOT / "keyadmin", work / "keyadmin", ignore=ignore)
    (work / "locale").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    subprocess.run(
        [sys.executable, "-m", "django", "makemessages", "--locale", "es", "--no-location"],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    po = work / "locale" / "es" / "LC_MESSAGES" / "django.po"
    # msgen fills each msgstr with its msgid, so the compiled file holds every msgid as a key.
    run("msgen", "--output-file", str(work / "en.po"), str(po))
    run("msgfmt", "--output-file", str(work / "all.mo"), str(work / "en.po"))
    keys = set(catalog(work / "all.mo")) - {""}
    assert len(keys) > 100, "makemessages found (almost) nothing"
    return keys


def _missing(keys: set, compiled: dict) -> list:
    return sorted((str(key) for key in keys if not compiled.get(key)), key=str)


def test_the_po_file_has_no_empty_or_fuzzy_translation(tmp_path):
    result = run("msgfmt", "--check", "--statistics", "-o", str(tmp_path / "es.mo"), str(PO))

    assert "fuzzy" not in result.stderr and "untranslated" not in result.stderr, result.stderr


def test_every_msgid_in_templates_and_code_is_translated_in_the_po(extracted, tmp_path):
    run("msgfmt", "--output-file", str(tmp_path / "es.mo"), str(PO))

    missing = _missing(extracted, catalog(tmp_path / "es.mo"))

    assert not missing, (
        "not translated in locale/es/LC_MESSAGES/django.po; run `make messages`, then fill in "
        f"each empty msgstr: {missing}"
    )


def test_the_compiled_catalog_covers_every_msgid(extracted):
    assert MO.exists(), "locale/es/LC_MESSAGES/django.mo is missing: `make test` compiles it"

    missing = _missing(extracted, catalog(MO))

    assert not missing, f"django.mo is older than the sources; `make test` recompiles: {missing}"


# --- no visible text outside the translation tags ---

TRANSLATED_BLOCK = re.compile(
    r"{%\s*blocktrans(?:late)?\b.*?{%\s*endblocktrans(?:late)?\s*%}|"
    r"{%\s*comment\s*%}.*?{%\s*endcomment\s*%}|{#.*?#}",
    re.S,
)
TAG = re.compile(r"{%.*?%}|{{.*?}}", re.S)
VISIBLE_ATTRIBUTES = {"title", "placeholder", "alt", "aria-label", "aria-description"}
NOT_WORDS = {"keyadmin", "UTC"}  # the product's name; a time zone
VOID_ELEMENTS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "wbr"}


class _VisibleText(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._skip = 0
        self._not_translated = 0  # depth inside an element marked translate="no" (code, names)

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        if tag not in VOID_ELEMENTS and (self._not_translated or ("translate", "no") in attrs):
            self._not_translated += 1
        for name, value in attrs:
            if value and (name in VISIBLE_ATTRIBUTES or name.startswith("data-msg-")):
                self._check(f"{tag}[{name}]", value)

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1
        if self._not_translated and tag not in VOID_ELEMENTS:
            self._not_translated -= 1

    def handle_data(self, data):
        if not self._skip and not self._not_translated:
            self._check("text", data)

    def _check(self, where: str, text: str) -> None:
        words = [w for w in re.findall(r"[A-Za-z]{2,}", text) if w not in NOT_WORDS]
        if words:
            self.found.append(f"{where}: {' '.join(text.split())[:80]!r}")


@pytest.mark.parametrize(
    "template", sorted(p.relative_to(TEMPLATES) for p in TEMPLATES.rglob("*.html")), ids=str
)
def test_templates_show_no_text_outside_translation_tags(template):
    source = (TEMPLATES / template).read_text()
    # Translated blocks and comments go; every other tag or variable becomes a blank.
    markup = TAG.sub(" ", TRANSLATED_BLOCK.sub(" ", source))
    parser = _VisibleText()
    parser.feed(markup)

    assert parser.found == [], f"{template}: wrap these in {{% translate %}}: {parser.found}"


# --- the language people get ---


@pytest.mark.django_db
def test_the_language_follows_accept_language(client):
    spanish = client.get("/sign-in/", HTTP_ACCEPT_LANGUAGE="es-ES,es;q=0.9,en;q=0.5")
    english = client.get("/sign-in/", HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9")
    other = client.get("/sign-in/", HTTP_ACCEPT_LANGUAGE="de-DE")

    assert spanish["Content-Language"] == "es"
    assert '<html lang="es">' in spanish.content.decode()
    assert "No hay ningún método de inicio de sesión configurado" in spanish.content.decode()
    assert "Accept-Language" in spanish["Vary"]
    assert english["Content-Language"] == "en"
    assert "No sign-in method configured" in english.content.decode()
    assert other["Content-Language"] == "en"  # the default


@pytest.mark.django_db
def test_error_pages_and_django_s_own_messages_are_spanish_too(client, settings):
    not_found = client.get("/nothing-here/", HTTP_ACCEPT_LANGUAGE="es")
    assert not_found.status_code == 404
    assert '<html lang="es">' in not_found.content.decode()
    assert "Página no encontrada" in not_found.content.decode()

    as_staff(client, settings)
    form = client.post(
        "/appservices/sign-in/", {"provider": "local-userpass"}, HTTP_ACCEPT_LANGUAGE="es"
    )
    page = form.content.decode()
    assert "Correo electrónico" in page and "Contraseña" in page
    assert "Este campo es obligatorio." in page  # Django's own catalog


@pytest.mark.django_db
def test_the_header_switches_the_language_with_a_csrf_protected_post(settings):
    settings.DEBUG = True
    settings.KEYADMIN_SSO = "dev"
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/sign-in/", HTTP_ACCEPT_LANGUAGE="en")
    html_text = page.content.decode()
    assert 'action="/i18n/setlang/"' in html_text
    assert '<input type="hidden" name="next" value="/sign-in/">' in html_text
    assert 'value="es" lang="es"' in html_text and ">Español</button>" in html_text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html_text)[1]

    assert browser.post("/i18n/setlang/", {"language": "es"}).status_code == 403  # no token
    switched = browser.post(
        "/i18n/setlang/", {"language": "es", "next": "/sign-in/", "csrfmiddlewaretoken": token}
    )

    assert switched.status_code == 302
    assert switched["Location"] == "/sign-in/"
    cookie = switched.cookies[settings.LANGUAGE_COOKIE_NAME]
    assert cookie.value == "es"
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    again = browser.get("/sign-in/", HTTP_ACCEPT_LANGUAGE="en")  # the choice beats the browser
    assert "Iniciar sesión en keyadmin" in again.content.decode()
    assert 'value="es" lang="es" class="btn btn-small btn-quiet" aria-current="true"' in (
        again.content.decode()
    )


@pytest.mark.django_db
def test_a_page_that_answers_a_post_switches_back_to_the_home_page(client, settings):
    settings.DEBUG = True
    settings.KEYADMIN_SSO = "dev"

    answer = client.post("/sign-in/", {"name": ""})  # the form again, with its error

    assert answer.status_code == 200
    assert '<input type="hidden" name="next" value="/">' in answer.content.decode()


def test_production_names_the_language_cookie_for_https_only():
    from keyadmin import settings as production  # the module, not the test overrides

    assert production.LANGUAGE_COOKIE_NAME == "__Host-language"
    assert production.LANGUAGE_COOKIE_SECURE is True
    assert production.LANGUAGES == [("en", "English"), ("es", "Español")]
