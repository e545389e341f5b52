"""The keys dashboard: every test has the database and staff signed in through the test SSO."""

from pathlib import Path

import pytest

from keyadmin.appservices import AppServices
from keyadmin.appservices import connection as connection_module
from tests.conftest import mark_folder
from tests.keys.actfor_support import act_for_app, start_customer_server


def pytest_collection_modifyitems(items):
    mark_folder(items, Path(__file__).parent, pytest.mark.django_db, pytest.mark.staff_sso)


# --- acting for a customer: a second local server whose Custom JWT provider trusts an HS256 key ---


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    server = start_customer_server("shop-abcde", tmp_path_factory.mktemp("shop") / "db.sqlite3")
    yield server
    server.stop()


@pytest.fixture
def on_shop(shop, settings):
    """The shop app alone; where it lives is already known, as after the process's first sign-in."""
    settings.KEYADMIN_APPS = (act_for_app(shop, "shop"),)
    AppServices(settings.KEYADMIN_APPS[0]).hostname()
    shop.reset_stats()
    return shop


@pytest.fixture
def known_customers(monkeypatch):
    """Customers acted for are new users; only the tests about a new user say so."""
    monkeypatch.setattr(connection_module, "NEW_USER_SECONDS", -1)
