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
    server = EmulatorProcess(APP_ID, tmp_path / "db.sqlite3", *rundev.custom_token_args(secret))
    server.start()
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


def test_a_signing_key_that_starts_with_a_dash_still_starts_the_local_server(tmp_path, monkeypatch):
    # token_urlsafe's alphabet has "-": one demo key in 64 starts with it, and then every
    # `make run` failed (argparse took the key for an option), as this test did now and then.
    monkeypatch.setattr(rundev.secrets, "token_urlsafe", lambda size: "-" + "k" * 63)
    secret = rundev.signing_key(tmp_path)
    assert secret.startswith("-")

    with EmulatorProcess(
        APP_ID, tmp_path / "db.sqlite3", *rundev.custom_token_args(secret)
    ).start():
        pass
