"""The audit trail: every test has the database."""

from pathlib import Path

import pytest

from tests.conftest import mark_folder


def pytest_collection_modifyitems(items):
    mark_folder(items, Path(__file__).parent, pytest.mark.django_db)
