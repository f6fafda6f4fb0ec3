from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts.models import MailAccount

from . import presets, text
from .models import DEFAULT_SMTP_PORTS, Identity, SignaturePlacement, SmtpAuth, SmtpSecurity, SmtpSettings


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
        return text.one_line(self.cleaned_data["from_name"])  # a header: one line (see outgoing/text.py)

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


class SendingSetupForm(SmtpSettingsForm):
    """The sending settings inside the first message's editor (fields named "smtp-..."): no provider menu or
    signature, no OAuth2 (those accounts get theirs without asking). A password typed is shown again after a
    Test, so the Send that follows it still has it (the page is not stored: see views.compose_message)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", "smtp")
        super().__init__(*args, **kwargs)
        del self.fields["preset"], self.fields["signature"]
        self.fields["auth"].choices = [c for c in SmtpAuth.choices if c[0] != SmtpAuth.OAUTH2]
        self.fields["port"].label = _("Port")
        self.fields["port"].help_text = ""
        self.fields["host"].help_text = ""
        password = self.fields["password"]
        password.widget = forms.PasswordInput(render_value=True, attrs={"autocomplete": "new-password"})
        password.help_text = ""
        self.fields["username"].widget.attrs.update({"autocomplete": "off", "spellcheck": "false"})
        self.fields["from_email"].widget.attrs.update({"autocomplete": "email", "spellcheck": "false"})
        self.fields["host"].widget.attrs.update({"autocomplete": "off", "spellcheck": "false"})
        self.fields["port"].widget.attrs.update({"inputmode": "numeric"})


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


class IdentityForm(forms.Form):
    address = forms.EmailField(max_length=320, label=_("Address"))
    name = forms.CharField(max_length=255, required=False, label=_("Your name"))
    signature = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False, label=_("Signature"))
    signature_html = forms.CharField(required=False, strip=False, widget=forms.HiddenInput)
    signature_format = forms.ChoiceField(
        choices=[("plain", "plain"), ("rich", "rich")], required=False, widget=forms.HiddenInput
    )
    signature_placement = forms.ChoiceField(
        choices=SignaturePlacement.choices,
        initial=SignaturePlacement.ABOVE,
        label=_("Signature in replies and forwards"),
        widget=forms.RadioSelect,
    )

    def __init__(self, *args, rich: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if self.is_bound:
            rich = self.data.get("signature_format") == "rich"
        rich_editor(self, "signature", "signature_html", "signature_format", rich)

    def clean_name(self) -> str:
        return text.one_line(self.cleaned_data["name"])  # a header: one line


def rich_editor(form: forms.Form, text: str, html: str, mode: str, rich: bool) -> None:
    """Mark a text field for the rich text editor (static/js/richtext.js), which starts in ``rich`` or plain text."""
    form.fields[text].widget.attrs.update(
        {
            "data-rich-html": form[html].auto_id,
            "data-rich-format": form[mode].auto_id,
            "data-rich-start": "rich" if rich else "plain",
        }
    )


class ComposeForm(forms.Form):
    identity = forms.ModelChoiceField(queryset=Identity.objects.none(), label=_("From"), required=False)
    # Older pages (and links) name only the account: its main identity.
    account = forms.ModelChoiceField(queryset=MailAccount.objects.none(), required=False, widget=forms.HiddenInput)
    to = forms.CharField(required=False, label=_("To"), max_length=20000)
    cc = forms.CharField(required=False, label=_("Cc"), max_length=20000)
    bcc = forms.CharField(required=False, label=_("Bcc"), max_length=20000)
    subject = forms.CharField(required=False, label=_("Subject"), max_length=2000)
    body = forms.CharField(required=False, label=_("Message"), strip=False, widget=forms.Textarea(attrs={"rows": 18}))
    # Rich text: the editor's HTML, used when ``format`` is "rich". The page says "plain" until its script has
    # started the editor, so without the script the text field is what counts.
    body_html = forms.CharField(required=False, strip=False, widget=forms.HiddenInput)
    format = forms.ChoiceField(choices=[("plain", "plain"), ("rich", "rich")], required=False, widget=forms.HiddenInput)
    attachments = MultipleFileField(required=False, label=_("Attach files"))
    remove = forms.TypedMultipleChoiceField(coerce=int, required=False, choices=[])
    # A new message's editor page: every save of it goes to one row (see send.save_draft).
    compose_key = forms.RegexField(regex=r"^[0-9a-f]{32}$", required=False, widget=forms.HiddenInput)

    def clean_subject(self) -> str:
        return text.one_line(self.cleaned_data["subject"])  # a header: one line (see outgoing/text.py)

    def __init__(
        self,
        *args,
        accounts: list[MailAccount],
        identities: list[Identity] = (),
        attachment_ids: list[int] = (),
        rich: bool = False,
        choose_identity: bool = True,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if self.is_bound:  # shown again as it was posted
            rich = self.data.get("format") == "rich"
        rich_editor(self, "body", "body_html", "format", rich)
        self.fields["body"].widget.attrs["data-rich-images"] = "1"  # pictures go into a message's text
        if not choose_identity:  # the first message from an account: From is in its sending setup
            del self.fields["identity"]
        self.fields["account"].queryset = MailAccount.objects.filter(id__in=[a.id for a in accounts])
        if choose_identity:
            rows = Identity.objects.filter(id__in=[i.id for i in identities]).select_related("account")
            self.fields["identity"].queryset = rows.order_by("account_id", "-is_default", "address", "id")
            self.fields["identity"].empty_label = None
            self.fields["identity"].label_from_instance = lambda identity: identity.label
        self.fields["remove"].choices = [(pk, pk) for pk in attachment_ids]
        for name in ("to", "cc", "bcc"):
            self.fields[name].widget.attrs.update(
                {"autocomplete": "off", "data-address-field": "1", "spellcheck": "false"}
            )

    def clean(self):
        data = super().clean()
        data.setdefault("identity", None)
        if data.get("identity") is not None:
            data["account"] = data["identity"].account
        elif data.get("account") is None and "identity" not in self.errors:
            self.add_error("identity" if "identity" in self.fields else None, _("Choose the address to send from."))
        return data
