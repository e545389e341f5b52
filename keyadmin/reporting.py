"""What Django's error reports (ADMINS e-mails, the DEBUG page) may show.

Django's `SafeExceptionReporterFilter` already hides settings and request META entries whose
names look secret, the session cookie, POST data marked `sensitive_post_parameters` and local
variables marked `sensitive_variables` (and of every frame they call). It does not hide the CSRF
secret Django keeps in `request.META["CSRF_COOKIE"]`, nor other cookies by name: this does.

Django stops hiding POST data and local variables while DEBUG is on; this filter never does,
because a development server signed in to a real App Services user holds a real password,
refresh token and key secrets all the same.
"""

from __future__ import annotations

import re

from django.views.debug import SafeExceptionReporterFilter


class ReporterFilter(SafeExceptionReporterFilter):
    hidden_settings = re.compile(
        # ASSERTION|JWT: identity-aware proxies' signed headers (Cf-Access-Jwt-Assertion,
        # X-Goog-Iap-Jwt-Assertion, X-Pomerium-Jwt-Assertion) are bearer credentials too.
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|COOKIE|CSRF|SESSION|ASSERTION|JWT",
        flags=re.IGNORECASE,
    )

    def is_active(self, request) -> bool:
        return True
