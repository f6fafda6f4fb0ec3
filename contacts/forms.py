from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _

from .actions import MAX_ADDRESSES, Card

MAX_IMPORT_BYTES = 5 * 1024 * 1024


class ContactForm(forms.Form):
    name = forms.CharField(max_length=255, required=False, label=_("Name"))
    emails = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off", "spellcheck": "false"}),
        required=False,
        label=_("E-mail addresses"),
        help_text=_("One per line; the first is the one suggested first."),
    )
    notes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), required=False, label=_("Notes"), max_length=10000
    )

    def clean_emails(self) -> list[str]:
        addresses = [line.strip() for line in self.cleaned_data["emails"].replace(",", "\n").splitlines()]
        addresses = [a for a in addresses if a]
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError:
                problem = _("“%(address)s” is not a valid e-mail address.")
                raise ValidationError(problem, params={"address": address}) from None
        if len(addresses) > MAX_ADDRESSES:
            raise ValidationError(_("At most %(n)d addresses per contact."), params={"n": MAX_ADDRESSES})
        return addresses

    def clean(self):
        data = super().clean()
        if not self.errors and not data.get("name", "").strip() and not data.get("emails"):
            raise ValidationError(_("Give a name or at least one address."))
        return data

    def card(self) -> Card:
        data = self.cleaned_data
        return Card(name=data["name"], emails=data["emails"], notes=data["notes"].replace("\r\n", "\n"))


class ImportForm(forms.Form):
    file = forms.FileField(label=_("vCard file (.vcf)"))

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_IMPORT_BYTES:
            raise ValidationError(_("The file is larger than 5 MB."))
        return upload
