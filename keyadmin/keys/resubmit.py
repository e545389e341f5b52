"""Telling this form sent twice from a name someone else took: the create form's nonce.

Without JavaScript a double click, or a reload while a create worked, sends the same form twice;
the first answer (the one with the secret) is dropped by the browser and the second meets "name
taken". keyadmin then offers to delete the key just made, but only when it is this form's own:

- every rendering of the create form carries a fresh nonce, signed for this staff session (an
  HMAC of the session key), so rendering the page writes nothing: a page view never saves the
  session, and a flood of page views cannot grow it;
- the first create posting a nonce claims it for its name (the last CLAIMS_KEPT claims are
  kept), and the claim is saved before the create goes upstream, so a second sending that
  arrives while the first still works sees it;
- "name taken" is this form's twin only when an earlier request claimed the same nonce for the
  same name and did not get a definite "nothing made" answer itself (then the name was taken
  by someone else), and only for a key made since that claim (the key it made, once known).

Session writes are last-writer-wins: a request of another tab saving at the same moment can
drop a claim. That only loses the offer (the plain "name taken" is shown), never widens it.

A nonce not signed for this session (another staff member's form, a forged one) or another
tab's (a different nonce) never gets the offer: the answer is the plain "name taken".
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

from django.http import HttpRequest
from django.utils.crypto import constant_time_compare, salted_hmac

NONCE_FIELD = "form_nonce"
SESSION_KEY = "create_forms"
CLAIMS_KEPT = 16

_NONCE = re.compile(r"^[A-Za-z0-9_-]{22}\.[0-9a-f]{32}$")
_SALT = "keyadmin.keys.resubmit"


@dataclass(frozen=True)
class Claim:
    """An earlier sending of this form: its name, when it was sent, what came of it."""

    name: str
    at: float
    key_id: str | None
    made_nothing: bool


def _forms(session) -> dict:
    forms = session.get(SESSION_KEY)
    return dict(forms) if isinstance(forms, dict) else {}


def _signature(session_key: str, random_part: str) -> str:
    return salted_hmac(_SALT, f"{session_key}:{random_part}", algorithm="sha256").hexdigest()[:32]


def issue(request: HttpRequest) -> str:
    """A new nonce for one rendering of the create form, signed for this session ("" without)."""
    session_key = request.session.session_key
    if not session_key:
        return ""
    random_part = secrets.token_urlsafe(16)
    return f"{random_part}.{_signature(session_key, random_part)}"


def _posted(request: HttpRequest) -> str | None:
    """The posted nonce, when it is well formed and was signed for this session."""
    nonce = request.POST.get(NONCE_FIELD, "")
    session_key = request.session.session_key
    if not session_key or not _NONCE.match(nonce):
        return None
    random_part, signature = nonce.split(".")
    return nonce if constant_time_compare(signature, _signature(session_key, random_part)) else None


def claim(request: HttpRequest, name: str) -> None:
    """Before the create goes out: the first sending of an issued nonce claims it for `name`.

    Saved at once (not at the end of the request) so that a second sending of the same form
    can see it while this one waits on App Services.
    """
    nonce = _posted(request)
    forms = _forms(request.session)
    if nonce is None or nonce in forms:
        return
    marker = secrets.token_hex(8)
    forms[nonce] = {"name": name, "at": time.time(), "by": marker}
    for old in list(forms)[:-CLAIMS_KEPT]:
        del forms[old]
    request.session[SESSION_KEY] = forms
    request.session.save()
    request.create_claim_marker = marker


def settle(request: HttpRequest, *, key_id: str | None = None, made_nothing: bool = False) -> None:
    """After the answer: record what this request's own claim led to."""
    marker = getattr(request, "create_claim_marker", None)
    nonce = _posted(request)
    forms = _forms(request.session)
    entry = forms.get(nonce) if nonce else None
    if marker is None or not isinstance(entry, dict) or entry.get("by") != marker:
        return
    forms[nonce] = {**entry, "key": key_id, "made_nothing": made_nothing}
    request.session[SESSION_KEY] = forms


def earlier_sending(request: HttpRequest, name: str) -> Claim | None:
    """The claim an earlier request made on this form's nonce for `name`, if any.

    Read from the session store afresh: the earlier request may have claimed after this one
    loaded the session.
    """
    nonce = _posted(request)
    if nonce is None or not request.session.session_key:
        return None
    stored = _forms(type(request.session)(request.session.session_key))
    entry = stored.get(nonce)
    if not isinstance(entry, dict) or entry.get("name") != name:
        return None
    if entry.get("by") == getattr(request, "create_claim_marker", None):
        return None  # this request's own claim: nothing was sent before it
    if not isinstance(entry.get("at"), int | float):
        return None
    key_id = entry.get("key")
    return Claim(
        name=name,
        at=float(entry["at"]),
        key_id=key_id if isinstance(key_id, str) else None,
        made_nothing=bool(entry.get("made_nothing")),
    )
