from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts.models import MailAccount

from . import compose, presets
from .models import DEFAULT_SMTP_PORTS, SmtpAuth, SmtpSecurity, SmtpSettings


class SmtpSettingsForm(forms.Form):
    preset = forms.ChoiceField(
        choices=[("", _("Other (enter the settings below)")), *presets.choices()],
        required=False,
        label=_("Provider"),
        help_text=_("Picking a provider fills in its server settings."),
    )
    host = forms.CharField(max_length=253, required=False, label=_("SMTP server"), help_text=_("e.g. smtp.example.com"))
    security = forms.ChoiceField(choices=SmtpSecurity.choices, initial=SmtpSecurity.STARTTLS, label=_("Security"))
    port = forms.IntegerField(
        min_value=1, max_value=65535, required=False, help_text=_("Leave empty for the usual port (465, 587 or 25).")
    )
    auth = forms.ChoiceField(
        choices=SmtpAuth.choices, initial=SmtpAuth.SAME, label=_("Login"), widget=forms.RadioSelect
    )
    username = forms.CharField(max_length=255, required=False, label=_("User name (separate login)"))
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        strip=False,
        required=False,
        label=_("Password (separate login)"),
        help_text=_("Leave empty to keep the stored one."),
    )
    from_name = forms.CharField(max_length=255, required=False, label=_("Your name"))
    from_email = forms.EmailField(max_length=320, label=_("From address"))
    signature = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False, label=_("Signature"))

    def __init__(self, *args, existing: SmtpSettings | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.existing = existing

    def clean_host(self) -> str:
        host = self.cleaned_data["host"].strip().lower().rstrip(".")
        preset = presets.SMTP_PRESETS.get(self.data.get("preset", ""))
        if not host and preset:  # a provider picked without the page's script
            return preset.host
        if not host or any(c in host for c in " /:@\\") or host.startswith("-"):
            raise ValidationError(_("Enter a host name such as smtp.example.com, without a port or scheme."))
        return host

    def clean_from_name(self) -> str:
        try:
            return compose.check_header(self.cleaned_data["from_name"].strip(), "from_name")
        except compose.ComposeError as exc:
            raise ValidationError(str(exc)) from None

    def clean(self):
        data = super().clean()
        preset = presets.SMTP_PRESETS.get(data.get("preset") or "")
        if preset and not self.data.get("host"):
            data["port"], data["security"] = preset.port, preset.security
        if data.get("port") is None and data.get("security"):
            data["port"] = DEFAULT_SMTP_PORTS[SmtpSecurity(data["security"])]
        if data.get("auth") == SmtpAuth.SEPARATE:
            if not data.get("username"):
                self.add_error("username", _("A separate login needs a user name."))
            has_password = bool(self.existing and self.existing.password_encrypted)
            if not data.get("password") and not has_password:
                self.add_error("password", _("A separate login needs a password."))
        return data


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data]
        return [single(data, initial)] if data else []


class ComposeForm(forms.Form):
    account = forms.ModelChoiceField(queryset=MailAccount.objects.none(), label=_("From"), empty_label=None)
    to = forms.CharField(required=False, label=_("To"), max_length=20000)
    cc = forms.CharField(required=False, label=_("Cc"), max_length=20000)
    bcc = forms.CharField(required=False, label=_("Bcc"), max_length=20000)
    subject = forms.CharField(required=False, label=_("Subject"), max_length=2000)
    body = forms.CharField(required=False, label=_("Message"), strip=False, widget=forms.Textarea(attrs={"rows": 18}))
    attachments = MultipleFileField(required=False, label=_("Attach files"))
    remove = forms.TypedMultipleChoiceField(coerce=int, required=False, choices=[])

    def __init__(self, *args, accounts: list[MailAccount], attachment_ids: list[int] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account"].queryset = MailAccount.objects.filter(id__in=[a.id for a in accounts]).select_related(
            "smtp"
        )
        self.fields["account"].label_from_instance = _identity_label
        self.fields["remove"].choices = [(pk, pk) for pk in attachment_ids]
        for name in ("to", "cc", "bcc"):
            self.fields[name].widget.attrs.update(
                {"autocomplete": "off", "data-address-field": "1", "spellcheck": "false"}
            )


def _identity_label(account: MailAccount) -> str:
    smtp = account.smtp
    return f"{smtp.from_name} <{smtp.from_email}>" if smtp.from_name else smtp.from_email
