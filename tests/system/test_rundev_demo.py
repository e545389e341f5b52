"""`make run`'s demo: an apps file acting for customers, its signing key, two seeded customers."""

from __future__ import annotations

import stat

from keyadmin import appservices
from keyadmin.appsfile import load_apps
from keyadmin.emulator.process import EmulatorProcess
from keyadmin.management.commands import rundev
from keyadmin.sso.actfor import mint_act_for_token
from tests.conftest import APP_ID


def test_the_demo_acts_for_two_seeded_customers_with_two_keys_each(settings, tmp_path):
    secret = rundev.signing_key(tmp_path)
    assert rundev.signing_key(tmp_path) == secret  # made once
    assert stat.S_IMODE((tmp_path / rundev.SIGNING_KEY_FILE).stat().st_mode) == 0o600
    server = EmulatorProcess(
        APP_ID, tmp_path / "db.sqlite3", "--custom-token-secret", secret
    ).start()
    try:
        settings.APPSERVICES_BASE_URL = server.url
        app = load_apps(
            str(rundev.write_apps_file(tmp_path)),
            base_url="",
            app_id="",
            allowed_hosts=[],
        )[0]
        assert app.act_for_enabled and app.jwt_algorithm == "HS256"

        assert rundev.seed_customers(app) == ["cus_alice", "cus_bob"]
        rundev.seed_customers(app)  # a second start adds nothing

        for customer in rundev.DEMO_CUSTOMERS:
            token = mint_act_for_token(app, customer, "test", "test-issuer", "SUP-2")
            tokens = appservices.AppServices(app).login("custom-token", {"token": token})
            user = appservices.UserSession(
                tokens.hostname, tokens.refresh_token, allowed_hosts=app.allowed_hosts
            )
            names = sorted(key.name for key in user.list_api_keys())
            assert names == [f"{customer}-ci", f"{customer}-web"]
    finally:
        server.stop()
