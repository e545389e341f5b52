"""Who the staff member is. One configured source (KEYADMIN_SSO), failing closed.

Today the only source is the development sign-in, refused unless DEBUG is on; the company SSO
modes plug in here.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib.auth import get_user_model, login, logout
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django_htmx.http import HttpResponseClientRedirect

DEV_USERNAME_PREFIX = "dev:"


def dev_sign_in_enabled() -> bool:
    return settings.DEBUG and settings.KEYADMIN_SSO == "dev"


def sign_in_dev(request: HttpRequest, name: str) -> None:
    if not dev_sign_in_enabled():
        raise PermissionDenied(_("The development sign-in is off."))
    name = " ".join(name.split())[:100]
    user, _created = get_user_model().objects.get_or_create(
        username=f"{DEV_USERNAME_PREFIX}{name}", defaults={"first_name": name}
    )
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")


def sign_out(request: HttpRequest) -> None:
    logout(request)  # flushes the session, App Services tokens included


def display_name(user) -> str:
    return user.first_name or user.get_username().removeprefix(DEV_USERNAME_PREFIX)


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        if not dev_sign_in_enabled():
            return render(request, "keyadmin/no-signin.html", status=403)
        url = reverse("keyadmin:staff-signin")
        if getattr(request, "htmx", False):
            return HttpResponseClientRedirect(url)
        return redirect(url)

    return wrapper
