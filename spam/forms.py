from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# An authserv-id is a host name (RFC 8601 §2.5), as providers write it in Authentication-Results.
_HOST = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


class ProviderTrustForm(forms.Form):
    trust = forms.BooleanField(
        required=False,
        label=_("Trust this provider's spam verdict"),
        help_text=_("Mail the provider's filter marked as spam (X-Spam-Flag and similar headers) goes to Spam."),
    )
    authserv_id = forms.CharField(
        max_length=255,
        required=False,
        label=_("Authentication results from"),
        help_text=_(
            "The provider's server name in its Authentication-Results headers, e.g. mx.example.com. Mail that "
            "fails its sender's DMARC check there is marked as probably spam. Leave empty if unsure: anyone can "
            "write that header, so only the provider's own is read."
        ),
    )

    def clean_authserv_id(self) -> str:
        value = self.cleaned_data["authserv_id"].strip().lower().rstrip(".")
        if value and not _HOST.fullmatch(value):
            raise ValidationError(_("Enter a server name such as mx.example.com."))
        return value


class ThresholdsForm(forms.Form):
    spam_score = forms.FloatField(
        required=False,
        min_value=-100,
        max_value=1000,
        localize=True,
        label=_("Move to Spam from this score"),
        help_text=_("Empty: where the spam filter draws the line itself (usually at 6 points)."),
    )
    probable_score = forms.FloatField(
        required=False,
        min_value=-100,
        max_value=1000,
        localize=True,
        label=_("Mark as probably spam from this score"),
        help_text=_("Empty: where the spam filter starts to have doubts (usually at 4 points)."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.widget.attrs.update(inputmode="decimal", size=6)

    def clean(self):
        data = super().clean()
        spam, probable = data.get("spam_score"), data.get("probable_score")
        if spam is not None and probable is not None and probable >= spam:
            self.add_error("probable_score", _("Choose a lower score than the one for Spam."))
        return data
