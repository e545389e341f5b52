# ruff: noqa: F811 - pytest fixtures are imported, then named as test arguments
"""The app registry: KEYADMIN_APPS_FILE (TOML or JSON) or today's single-app variables.

`load_apps` is what settings.py calls, so most cases call it directly with a file in tmp_path;
a few import the settings in a fresh interpreter, as a server's start-up would.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import textwrap
import tomllib

import pytest
from django.core.exceptions import ImproperlyConfigured

from keyadmin.appservices import apps as registry
from keyadmin.appsfile import AppConfig, load_apps, single_app
from tests.conftest import ROOT
from tests.sso.fixtures import keys  # noqa: F401 - fixture
from tests.system.test_settings import start

HS256_SECRET = "hs256-signing-key-for-the-staging-app-0123456789"
SINGLE = {
    "base_url": "https://services.cloud.mongodb.com",
    "app_id": "ignored-abcde",
    "allowed_hosts": ["services.cloud.mongodb.com"],
}

TWO_APPS_TOML = """
[[apps]]
key = "shop-prod"
name = "Shop (production)"
app_id = "shop-prod-abcde"
base_url = "https://services.cloud.mongodb.com"
environment = "production"
operator_groups = ["keyadmin-prod-operators"]
act_for_enabled = true
customer_label = "Customer id"
customer_pattern = '^cus_[A-Za-z0-9]+$'
ticket_pattern = '^SUP-\\d+$'
max_act_for_minutes = 30

[[apps]]
key = "shop-staging"
name = "Shop (staging)"
app_id = "shop-staging-fghij"
base_url = "https://eu-west-1.aws.services.cloud.mongodb.com"
allowed_hosts = ["eu-west-1.aws.services.cloud.mongodb.com"]
environment = "staging"
act_for_enabled = true
jwt_audience = "shop-staging-audience"
jwt_algorithm = "HS256"
jwt_hs256_secret_file = "staging-signing-key"
"""


def write(tmp_path, text: str, name: str = "apps.toml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def load(path: str) -> tuple[AppConfig, ...]:
    return load_apps(path, **SINGLE)


@pytest.fixture
def two_apps(tmp_path) -> str:
    (tmp_path / "staging-signing-key").write_text(HS256_SECRET + "\n")
    return write(tmp_path, TWO_APPS_TOML)


def test_a_toml_file_lists_the_apps_in_order_with_their_settings(two_apps):
    production, staging = load(two_apps)

    assert production == AppConfig(
        key="shop-prod",
        name="Shop (production)",
        app_id="shop-prod-abcde",
        base_url="https://services.cloud.mongodb.com",
        allowed_hosts=("services.cloud.mongodb.com", "*.services.cloud.mongodb.com"),
        environment="production",
        operator_groups=("keyadmin-prod-operators",),
        act_for_enabled=True,
        customer_label="Customer id",
        customer_pattern="^cus_[A-Za-z0-9]+$",
        ticket_pattern=r"^SUP-\d+$",
        max_act_for_minutes=30,
        default_act_for_minutes=15,
        jwt_audience="shop-prod-abcde",  # the app id unless the file says otherwise
        jwt_algorithm="RS256",
    )
    assert production.is_production and not staging.is_production
    assert production.role_groups("viewer") is None
    assert production.role_groups("operator") == ("keyadmin-prod-operators",)
    assert (staging.key, staging.environment, staging.jwt_audience) == (
        "shop-staging",
        "staging",
        "shop-staging-audience",
    )
    assert staging.allowed_hosts == ("eu-west-1.aws.services.cloud.mongodb.com",)
    assert staging.jwt_algorithm == "HS256"
    # Read once at start-up, without the file's trailing newline.
    assert staging.jwt_hs256_secret.reveal() == HS256_SECRET.encode()


def test_deleting_a_new_empty_user_is_off_on_production_unless_the_file_turns_it_on(
    two_apps, tmp_path
):
    production, staging = load(two_apps)
    assert (production.delete_new_users, staging.delete_new_users) == (False, True)

    turned = TWO_APPS_TOML.replace(
        "max_act_for_minutes = 30", "max_act_for_minutes = 30\ndelete_new_users = true"
    ).replace('environment = "staging"', 'environment = "staging"\ndelete_new_users = false')
    production, staging = load(write(tmp_path, turned, name="turned.toml"))
    assert (production.delete_new_users, staging.delete_new_users) == (True, False)


def test_a_json_file_says_the_same_as_the_toml_one(two_apps, tmp_path):
    document = tomllib.loads(TWO_APPS_TOML)
    json_file = write(tmp_path, json.dumps(document), name="apps.json")

    from_json = load(json_file)

    assert from_json == load(two_apps)
    assert from_json[1].jwt_hs256_secret.reveal() == HS256_SECRET.encode()


def test_without_a_file_the_single_app_variables_make_the_one_app():
    (only,) = load_apps(
        "",
        base_url="http://127.0.0.1:9090",
        app_id="keyadmin-demo-abcde",
        allowed_hosts=["127.0.0.1"],
        bridge_audience="",
    )

    assert only == AppConfig(
        key="default",
        name="keyadmin-demo-abcde",
        app_id="keyadmin-demo-abcde",
        base_url="http://127.0.0.1:9090",
        allowed_hosts=("127.0.0.1",),
        environment="development",  # the local server
        jwt_audience="keyadmin-demo-abcde",
    )
    assert not only.act_for_enabled
    cloud = single_app(
        base_url="https://services.cloud.mongodb.com",
        app_id="myapp-abcde",
        allowed_hosts=["services.cloud.mongodb.com"],
        bridge_audience="bridge-audience",
    )
    assert (cloud.environment, cloud.jwt_audience) == ("production", "bridge-audience")


SHOW_APPS = """
import json
from keyadmin import settings as s
print(json.dumps({
    "apps": [[a.key, a.app_id, a.base_url, list(a.allowed_hosts), a.environment, a.jwt_audience]
             for a in s.KEYADMIN_APPS],
    "single": [s.APPSERVICES_APP_ID, s.APPSERVICES_BASE_URL, s.APPSERVICES_ALLOWED_HOSTS],
}))
"""


def started(overrides: dict) -> dict:
    result = start(overrides, SHOW_APPS)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_the_settings_fall_back_to_todays_variables_unchanged():
    values = started(
        {
            "APPSERVICES_APP_ID": "myapp-abcde",
            "APPSERVICES_BASE_URL": "https://eu-west-1.aws.services.cloud.mongodb.com",
            "KEYADMIN_BRIDGE_AUDIENCE": "myapp-bridge",
        }
    )

    app_id, base_url, hosts = values["single"]
    assert (app_id, base_url) == (
        "myapp-abcde",
        "https://eu-west-1.aws.services.cloud.mongodb.com",
    )
    assert hosts == ["eu-west-1.aws.services.cloud.mongodb.com", "*.services.cloud.mongodb.com"]
    assert values["apps"] == [
        ["default", app_id, base_url, hosts, "production", "myapp-bridge"],
    ]


def test_the_settings_read_the_apps_file(two_apps, keys):
    # shop-prod acts for customers with RS256: the bridge's key signs its tokens.
    values = started(
        {"KEYADMIN_APPS_FILE": two_apps, "KEYADMIN_BRIDGE_PRIVATE_KEY": keys.rsa_private_pem()}
    )

    assert [app[:2] for app in values["apps"]] == [
        ["shop-prod", "shop-prod-abcde"],
        ["shop-staging", "shop-staging-fghij"],
    ]


def test_an_unusable_apps_file_stops_start_up(tmp_path):
    path = write(tmp_path, '[[apps]]\nkey = "x"\n')

    result = start({"KEYADMIN_APPS_FILE": path})

    assert result.returncode != 0
    last = result.stderr.splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured: KEYADMIN_APPS_FILE")
    assert "apps[0] (x).name is required" in last


def test_acting_with_rs256_needs_the_bridge_key_at_start_up(tmp_path):
    path = write(
        tmp_path,
        """
        [[apps]]
        key = "shop"
        name = "Shop"
        app_id = "shop-abcde"
        environment = "production"
        act_for_enabled = true
        """,
    )

    result = start({"KEYADMIN_APPS_FILE": path})

    assert result.returncode != 0
    last = result.stderr.splitlines()[-1]
    assert "app(s) shop act for customers with RS256" in last
    assert "KEYADMIN_BRIDGE_PRIVATE_KEY (or _FILE) signs their tokens: it is not set" in last
    bad_key = start({"KEYADMIN_APPS_FILE": path, "KEYADMIN_BRIDGE_PRIVATE_KEY": "not a key"})
    assert "signs their tokens: not a readable" in bad_key.stderr.splitlines()[-1]


# --- Every mistake the file can hold, each named with the file, the app and the field ---------

APP = """
[[apps]]
key = "shop"
name = "Shop"
app_id = "shop-abcde"
environment = "production"
"""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param('colour = "blue"', "apps[0] (shop): unknown field(s) colour", id="unknown"),
        pytest.param(
            'environment_ = "x"', "apps[0] (shop): unknown field(s) environment_", id="typo"
        ),
        pytest.param(
            APP.replace('app_id = "shop-abcde"', 'app_id = "other-abcde"'),
            "key 'shop' is used by more than one app",
            id="duplicate-key",
        ),
        pytest.param(
            APP.replace('key = "shop"', 'key = "shop-2"'),
            "app_id 'shop-abcde' is used by more than one app",
            id="duplicate-app-id",
        ),
        pytest.param(
            'base_url = "https://appservices.example.com"\n'
            'allowed_hosts = ["*.services.cloud.mongodb.com"]',
            "apps[0] (shop).base_url 'https://appservices.example.com' names a host that "
            "allowed_hosts does not allow",
            id="host-not-allowed",
        ),
        pytest.param(
            'base_url = "http://appservices.example.com"\n'
            'allowed_hosts = ["appservices.example.com"]',
            "apps[0] (shop).base_url 'http://appservices.example.com' must be an https URL",
            id="plain-http",
        ),
        pytest.param(
            'base_url = "https://services.cloud.mongodb.com/api"',
            "without a path or query",
            id="base-url-path",
        ),
        pytest.param(
            'base_url = "https://me:hunter2@services.cloud.mongodb.com"',
            "apps[0] (shop).base_url must not hold a user name or password",
            id="base-url-password",
        ),
        pytest.param(
            "allowed_hosts = []",
            "names a host that allowed_hosts does not allow",
            id="no-allowed-host",
        ),
        pytest.param(
            'customer_pattern = "^cus_[A-Z"',
            "apps[0] (shop).customer_pattern is not a valid regular expression",
            id="customer-pattern",
        ),
        pytest.param(
            'ticket_pattern = "SUP-(\\\\d+"',
            "apps[0] (shop).ticket_pattern is not a valid regular expression",
            id="ticket-pattern",
        ),
        pytest.param(
            'ticket_pattern = ""', "ticket_pattern must be a non-empty", id="empty-pattern"
        ),
        pytest.param(
            'jwt_algorithm = "HS256"',
            "apps[0] (shop).jwt_hs256_secret_file is required with jwt_algorithm HS256",
            id="hs256-no-file",
        ),
        pytest.param(
            'jwt_algorithm = "HS256"\njwt_hs256_secret_file = "missing-key"',
            "apps[0] (shop).jwt_hs256_secret_file 'missing-key' cannot be read: "
            "No such file or directory",
            id="hs256-missing-file",
        ),
        pytest.param(
            'jwt_algorithm = "HS256"\njwt_hs256_secret_file = "short-key"',
            "apps[0] (shop).jwt_hs256_secret_file 'short-key' must hold a key of 32 to 512 bytes",
            id="hs256-short",
        ),
        pytest.param(
            'jwt_algorithm = "HS256"\njwt_hs256_secret_file = "long-key"',
            "apps[0] (shop).jwt_hs256_secret_file 'long-key' must hold a key of 32 to 512 bytes",
            id="hs256-long",
        ),
        pytest.param(
            'jwt_hs256_secret_file = "short-key"',
            "jwt_hs256_secret_file is only read with jwt_algorithm HS256",
            id="secret-with-rs256",
        ),
        pytest.param(
            'jwt_algorithm = "none"', "apps[0] (shop).jwt_algorithm must be RS256", id="alg"
        ),
        pytest.param(
            "max_act_for_minutes = 0",
            "apps[0] (shop).max_act_for_minutes must be 1 to 480, not 0",
            id="max-zero",
        ),
        pytest.param(
            "max_act_for_minutes = 600", "max_act_for_minutes must be 1 to 480", id="max-high"
        ),
        pytest.param(
            'max_act_for_minutes = "60"',
            "max_act_for_minutes must be a whole number of minutes",
            id="max-text",
        ),
        pytest.param(
            "max_act_for_minutes = 10\ndefault_act_for_minutes = 20",
            "default_act_for_minutes (20) is above max_act_for_minutes (10)",
            id="default-above-max",
        ),
        pytest.param('act_for_enabled = "yes"', "act_for_enabled must be true or false", id="flag"),
        pytest.param(
            'operator_groups = "ops"',
            "apps[0] (shop).operator_groups must be a list of non-empty strings",
            id="groups-not-list",
        ),
        pytest.param('act_for_groups = [""]', "act_for_groups must be a list", id="empty-group"),
        pytest.param('viewer_groups = [" "]', "viewer_groups must be a list", id="blank-group"),
    ],
)
def test_each_mistake_in_an_app_stops_start_up_naming_the_field(tmp_path, extra, message):
    (tmp_path / "short-key").write_text("0123456789abcdef0123456789abcde\n")  # 31 bytes
    (tmp_path / "long-key").write_text("0123456789abcdef" * 32 + "x")  # 513 bytes
    path = write(tmp_path, APP + extra + "\n")

    with pytest.raises(ImproperlyConfigured) as refused:
        load(path)

    text = str(refused.value)
    assert text.startswith(f"KEYADMIN_APPS_FILE {path}: ")
    assert message in text
    assert "hunter2" not in text
    assert "0123456789abcdef" not in text  # a short key is refused without being shown


@pytest.mark.parametrize(
    ("replace", "message"),
    [
        (('key = "shop"', 'key = "Shop Prod"'), "apps[0] (Shop Prod).key must be 1 to 32"),
        (('key = "shop"\n', ""), "apps[0].key is required"),
        (('name = "Shop"\n', ""), "apps[0] (shop).name is required"),
        (('app_id = "shop-abcde"', 'app_id = "shop/../admin"'), "app_id must be an App"),
        (('environment = "production"\n', ""), "apps[0] (shop).environment is required"),
        (
            ('environment = "production"', 'environment = "prod"'),
            "apps[0] (shop).environment must be one of production, staging, development",
        ),
        (('name = "Shop"', 'name = "Shop\\u0007"'), "apps[0] (shop).name must be at most 100"),
    ],
    ids=["key-pattern", "no-key", "no-name", "app-id", "no-environment", "environment", "name"],
)
def test_required_fields_and_their_forms(tmp_path, replace, message):
    path = write(tmp_path, APP.replace(*replace))

    with pytest.raises(ImproperlyConfigured, match=r"^KEYADMIN_APPS_FILE ") as refused:
        load(path)

    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("apps.yaml", "apps: []", "the file name must end in .toml or .json"),
        ("apps.toml", "[[apps]\nkey =", "is not valid TOML"),
        ("apps.json", '{"apps": [', "is not valid JSON"),
        ("apps.json", "[]", "the file must hold an object with `apps`"),
        ("apps.toml", 'default = "shop"\n' + APP, "unknown top-level field(s) default"),
        ("apps.toml", "apps = []", "`apps` must list at least one app"),
        ("apps.json", '{"apps": ["shop"]}', "apps[0] must be a table of fields"),
    ],
    ids=["extension", "toml", "json", "json-list", "top-level", "empty", "not-a-table"],
)
def test_a_file_keyadmin_cannot_read_stops_start_up(tmp_path, name, text, message):
    path = write(tmp_path, text, name=name)

    with pytest.raises(ImproperlyConfigured) as refused:
        load(path)

    assert str(refused.value).startswith(f"KEYADMIN_APPS_FILE {path}")
    assert message in str(refused.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ImproperlyConfigured, match=r"apps\.toml cannot be read: No such file"):
        load(str(tmp_path / "apps.toml"))


def test_every_problem_is_reported_at_once(tmp_path):
    path = write(tmp_path, APP + 'environment_ = "x"\njwt_algorithm = "ES256"\n')

    with pytest.raises(ImproperlyConfigured) as refused:
        load(path)

    assert "unknown field(s) environment_" in str(refused.value)
    assert "jwt_algorithm must be RS256" in str(refused.value)


# --- The signing key never shows ------------------------------------------------------------


def test_the_hs256_key_is_in_no_repr_str_or_copy(two_apps):
    apps = load(two_apps)
    staging = apps[1]

    shown = [
        repr(apps),
        str(staging),
        repr(dataclasses.asdict(staging)),
        repr(dataclasses.replace(staging, name="x")),
        f"{staging.jwt_hs256_secret}",
        repr(vars(staging)),
    ]

    for text in shown:
        assert HS256_SECRET not in text
    assert "SigningSecret(<hidden>)" in repr(dataclasses.asdict(staging))
    with pytest.raises(TypeError, match="never pickled"):
        pickle.dumps(staging)


# --- Looking apps up -------------------------------------------------------------------------


def test_the_registry_looks_apps_up_in_the_current_settings(two_apps, settings):
    settings.KEYADMIN_APPS = load(two_apps)

    assert [app.key for app in registry.all_apps()] == ["shop-prod", "shop-staging"]
    assert registry.default_app().key == "shop-prod"
    assert registry.app("shop-staging").app_id == "shop-staging-fghij"
    assert registry.app("SHOP-STAGING") is None
    assert registry.app("") is None
    assert registry.app_for_id("shop-prod-abcde").key == "shop-prod"
    assert registry.app_for_id("unknown-abcde") is None


def test_the_test_settings_hold_the_single_app():
    (only,) = registry.all_apps()

    assert only.key == "default"
    assert only.app_id == "keyadmin-test-abcde"


def test_the_example_in_the_docs_loads(tmp_path):
    text = (ROOT / "docs" / "apps.md").read_text()
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "staging-signing-key").write_text(HS256_SECRET)
    example = example.replace(
        "/run/credentials/keyadmin.service/staging-signing-key", "staging-signing-key"
    )

    production, staging = load(write(tmp_path, example))

    assert (production.environment, production.act_for_groups) == (
        "production",
        ("keyadmin-support-leads",),
    )
    assert (staging.jwt_algorithm, staging.jwt_audience) == ("HS256", "shop-staging")
    assert production.ticket_pattern == r"^SUP-\d+$"  # a TOML literal string keeps the "\"


# --- Two apps whose providers would take each other's act-for tokens --------------------------

OTHER_APP = """
[[apps]]
key = "other"
name = "Other"
app_id = "other-fghij"
environment = "staging"
"""


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        pytest.param(
            'jwt_audience = "keyadmin"',
            'jwt_audience = "keyadmin"',
            "apps other and shop sign with the same key (keyadmin's RS256 key) for the same "
            "jwt_audience 'keyadmin'",
            id="rs256-same-audience",
        ),
        pytest.param(
            'jwt_audience = "other-fghij"',
            "",
            "apps other and shop sign with the same key (keyadmin's RS256 key) for the same "
            "jwt_audience 'other-fghij'",
            id="rs256-audience-is-the-other-app-id",
        ),
        pytest.param(
            'jwt_algorithm = "HS256"\njwt_hs256_secret_file = "key-one"',
            'jwt_algorithm = "HS256"\njwt_hs256_secret_file = "key-one-again"',
            "apps other and shop sign with the same key (one HS256 key)",
            id="hs256-same-key",
        ),
    ],
)
def test_apps_whose_tokens_the_other_would_accept_stop_start_up(tmp_path, first, second, message):
    # Attack: a token keyadmin mints for one app (sent to that app's upstream, which may be a
    # staging server others run) is valid at the other app's provider as the same customer,
    # when both trust one key and expect one audience: every RS256 app shares keyadmin's key,
    # so its audience is all that keeps a staging token out of production.
    (tmp_path / "key-one").write_text(HS256_SECRET + "\n")
    (tmp_path / "key-one-again").write_text(HS256_SECRET)
    path = write(tmp_path, APP + first + "\n" + OTHER_APP + second + "\n")

    with pytest.raises(ImproperlyConfigured) as refused:
        load(path)

    assert message in str(refused.value)
    assert HS256_SECRET not in str(refused.value)


def test_apps_with_their_own_audiences_or_keys_load(tmp_path):
    (tmp_path / "key-one").write_text(HS256_SECRET)
    (tmp_path / "key-two").write_text(HS256_SECRET[::-1])
    rs256 = write(tmp_path, APP + OTHER_APP, "rs256.toml")
    hs256 = write(
        tmp_path,
        APP
        + 'jwt_algorithm = "HS256"\njwt_hs256_secret_file = "key-one"\n'
        + OTHER_APP
        + 'jwt_algorithm = "HS256"\njwt_hs256_secret_file = "key-two"\n',
        "hs256.toml",
    )

    assert [app.jwt_audience for app in load(rs256)] == ["shop-abcde", "other-fghij"]
    assert len(load(hs256)) == 2
