"""The development sign-in form (KEYADMIN_SSO=dev with DEBUG): a name and the roles to try."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from keyadmin.sso.roles import ACT_FOR, AUDITOR, OPERATOR, ROLES, VIEWER


class StaffSignInForm(forms.Form):
    name = forms.CharField(
        label=_("Your name"),
        max_length=100,
        help_text=_("Shown in the page header so colleagues can tell sessions apart."),
        widget=forms.TextInput(attrs={"autocomplete": "name", "spellcheck": "false"}),
    )
    # Lets a developer try each role; the company sign-on takes roles from groups instead.
    roles = forms.MultipleChoiceField(
        label=_("Roles"),
        required=False,
        initial=list(ROLES),
        choices=[
            (VIEWER, _("Viewer: see keys")),
            (OPERATOR, _("Operator: create, enable, disable and delete keys")),
            (AUDITOR, _("Auditor: read the audit trail")),
            (ACT_FOR, _("Act for a customer: sign in to an app as one of its customers")),
        ],
        widget=forms.CheckboxSelectMultiple,
    )
