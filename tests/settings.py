"""Settings for the test run: the production settings with test secrets filled in."""

import os
import tempfile

os.environ.setdefault("KEYADMIN_SECRET_KEY", "test-secret-key-not-for-production-" + "x" * 20)
os.environ.setdefault("KEYADMIN_TOKEN_KEY", "b88ZosS5V5ZfD1dMUufyQV4MwkC62Sav1ApdzkjI_0I=")
os.environ.setdefault("APPSERVICES_APP_ID", "keyadmin-test-abcde")
os.environ.setdefault("KEYADMIN_SSL_REDIRECT", "false")
os.environ.setdefault("KEYADMIN_ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")

from keyadmin.settings import *  # noqa: F403

# The test client speaks plain http; the production cookie names need https.
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SESSION_COOKIE_NAME = "sessionid"
CSRF_COOKIE_NAME = "csrftoken"
LANGUAGE_COOKIE_SECURE = False
LANGUAGE_COOKIE_NAME = "django_language"
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A real file, so the leak tests can search the bytes the database actually wrote.
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(tempfile.gettempdir(), f"keyadmin-test-{os.getpid()}.sqlite3")
    }
else:
    # PostgreSQL (DATABASE_URL): a test database per run, so runs sharing a server never meet.
    DATABASES["default"]["TEST"] = {"NAME": f"test_keyadmin_{os.getpid()}"}  # noqa: F405
