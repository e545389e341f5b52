"""The App Services client HTTP API: the only package in keyadmin that talks to App Services.

`client` holds the pooled transport, the app (location, login) and a signed-in user's session
with its key calls; `errors` the typed failures; `connection` the App Services session a staff
member's keyadmin session holds. The names below are the ones views and tests use.
"""

from keyadmin.appservices.client import (
    KEY_ID_PATTERN,
    KEY_NAME_PATTERN,
    MAX_KEY_NAME_LENGTH,
    ApiKey,
    AppServices,
    NewApiKey,
    Profile,
    ProviderIdentity,
    Tokens,
    UserSession,
    check_key_id,
    check_key_name,
    check_origin,
    forget_locations,
)
from keyadmin.appservices.errors import (
    MAX_KEYS_PER_USER,
    AppServicesError,
    BadCredentials,
    CreateOutcomeUnknown,
    HostNotAllowed,
    InvalidKeyId,
    InvalidKeyName,
    KeyLimitReached,
    KeyNameTaken,
    KeyNotFound,
    NotAllowed,
    RequestRejected,
    SessionEnded,
    UpstreamGarbage,
    UpstreamUnavailable,
    UpstreamUnreachable,
)

__all__ = [
    "KEY_ID_PATTERN",
    "KEY_NAME_PATTERN",
    "MAX_KEYS_PER_USER",
    "MAX_KEY_NAME_LENGTH",
    "ApiKey",
    "AppServices",
    "AppServicesError",
    "BadCredentials",
    "CreateOutcomeUnknown",
    "HostNotAllowed",
    "InvalidKeyId",
    "InvalidKeyName",
    "KeyLimitReached",
    "KeyNameTaken",
    "KeyNotFound",
    "NewApiKey",
    "NotAllowed",
    "Profile",
    "ProviderIdentity",
    "RequestRejected",
    "SessionEnded",
    "Tokens",
    "UpstreamGarbage",
    "UpstreamUnavailable",
    "UpstreamUnreachable",
    "UserSession",
    "check_key_id",
    "check_key_name",
    "check_origin",
    "forget_locations",
]
