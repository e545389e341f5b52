"""What can go wrong talking to App Services, as types a view can answer in place.

Each error's `message` is translated and fit to show a support engineer as it is; `status`,
`error_code`, `method` and `path` say what App Services answered, and no repr holds a token.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

MAX_KEYS_PER_USER = 20


class AppServicesError(Exception):
    """A call to App Services failed; `message` is fit to show a support engineer."""

    default_message = gettext_noop("App Services could not complete the request.")

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        error_code: str | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.message = message or _(self.default_message)
        self.status = status
        self.error_code = error_code
        self.method = method
        self.path = path
        super().__init__(self.message)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status}, error_code={self.error_code!r}, "
            f"{self.method} {self.path})"
        )


class SessionEnded(AppServicesError):
    default_message = gettext_noop(
        "The App Services session has ended. Sign in to App Services again."
    )


class BadCredentials(AppServicesError):
    default_message = gettext_noop("App Services did not accept those credentials.")


class SignInTokenRefused(AppServicesError):
    """The custom-token login (keyadmin's SSO bridge) was refused: provider off or token not
    trusted. Not a wrong password: nothing a support engineer types can fix it."""

    default_message = gettext_noop(
        "This App Services app does not accept keyadmin's sign-in tokens (custom JWT provider "
        "off or misconfigured)."
    )


class NotAllowed(AppServicesError):
    default_message = gettext_noop(
        "App Services does not let this session manage API keys. Sessions opened anonymously "
        "or with an API key cannot manage keys; sign in with email and password."
    )


class KeyNotFound(AppServicesError):
    default_message = gettext_noop(
        "This API key no longer exists. It may have been deleted elsewhere."
    )


class InvalidKeyName(AppServicesError):
    default_message = gettext_noop(
        "A key name can only contain ASCII letters, digits, underscores (_) and hyphens (-)."
    )


class KeyNameTaken(AppServicesError):
    default_message = gettext_noop(
        "This user already has a key with that name. Choose another name."
    )


class KeyLimitReached(AppServicesError):
    default_message = gettext_noop(
        "This user already has %(max)d API keys, the most App Services allows. "
        "Delete a key before creating another."
    )

    def __init__(self, message: str | None = None, **kwargs) -> None:
        super().__init__(message or _(self.default_message) % {"max": MAX_KEYS_PER_USER}, **kwargs)


class RequestRejected(AppServicesError):
    default_message = gettext_noop("App Services refused the request.")


class UnknownApp(RequestRejected):
    """App Services has no app with the configured id (a 404 on the app's location)."""

    default_message = gettext_noop("App Services does not know this app id.")

    @classmethod
    def of(cls, app_id: str, app_name: str, error: AppServicesError) -> UnknownApp:
        """The error staff see, naming the app as keyadmin knows it and where its id is set."""
        message = _(
            "App Services does not know the app id %(app_id)s (app %(name)s). An administrator "
            "must check its app_id in KEYADMIN_APPS_FILE, or APPSERVICES_APP_ID without that "
            "file."
        ) % {"app_id": app_id, "name": app_name}
        return cls(
            message,
            status=error.status,
            error_code=error.error_code,
            method=error.method,
            path=error.path,
        )


class UpstreamUnavailable(AppServicesError):
    default_message = gettext_noop(
        "App Services is not answering right now. Try again in a moment."
    )


class UpstreamUnreachable(UpstreamUnavailable):
    """No connection could be made, so the request cannot have reached App Services."""

    default_message = gettext_noop(
        "keyadmin could not reach App Services. Check that it is up, then retry."
    )


class CreateOutcomeUnknown(UpstreamUnavailable):
    """The create request went out but its answer was lost: the key may exist."""

    default_message = gettext_noop(
        "App Services may have created the key, but its answer was lost, so the secret cannot "
        "be shown. Check the list: if the key is there, delete it and create a new one."
    )


class UpstreamGarbage(AppServicesError):
    default_message = gettext_noop(
        "App Services sent an answer keyadmin cannot read. Try again in a moment."
    )


class InvalidKeyId(AppServicesError, ValueError):
    default_message = gettext_noop("That is not an API key id (24 lower-case hexadecimal digits).")


class HostNotAllowed(AppServicesError):
    default_message = gettext_noop(
        "App Services asked keyadmin to send credentials to a host that is not allowed "
        "(the app's allowed_hosts in KEYADMIN_APPS_FILE, or APPSERVICES_ALLOWED_HOSTS without "
        "that file)."
    )
