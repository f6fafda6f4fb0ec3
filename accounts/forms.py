from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from webpop.lib.tls import normalize_fingerprint

from .models import DEFAULT_PORTS, AuthMechanism, MailAccount, Security
from .policy import Policy

POLICY_CHOICES = [
    ("keep", _("Keep: leave every message on the server (other mail programs still see it)")),
    ("mirror", _("Mirror: when I delete a message here, delete it on the server too")),
    ("delete", _("Move: delete each message from the server once webpop has stored it safely")),
]

DELIVERY_FOLDERS = [("inbox", _("Inbox")), ("archive", _("Archive (skip the inbox)"))]


class MailAccountForm(forms.Form):
    address = forms.EmailField(
        required=False,
        label=_("E-mail address"),
        help_text=_("webpop fills in the server settings for known providers and domains that publish them."),
    )
    label = forms.CharField(max_length=100, required=False, label=_("Label"), help_text=_("Optional, e.g. “Work”."))
    host = forms.CharField(max_length=253, label=_("POP3 server"), help_text=_("e.g. pop.example.com"))
    security = forms.ChoiceField(choices=Security.choices, initial=Security.SSL, label=_("Security"))
    port = forms.IntegerField(
        min_value=1,
        max_value=65535,
        required=False,
        label=_("Port"),
        help_text=_("Leave empty for the usual port (995 or 110)."),
    )
    username = forms.CharField(max_length=255, label=_("User name"))
    password = forms.CharField(widget=forms.PasswordInput(render_value=True), strip=False, label=_("Password"))
    policy = forms.ChoiceField(choices=POLICY_CHOICES, initial="keep", label=_("Server copy"), widget=forms.RadioSelect)
    days = forms.IntegerField(
        min_value=1,
        max_value=36500,
        required=False,
        label=_("…and delete from the server after this many days"),
        help_text=_(
            "Optional, with Keep or Mirror: frees space on the server while other devices still "
            "see recent mail. Only messages webpop has stored are ever deleted."
        ),
    )
    poll_interval = forms.TypedChoiceField(
        coerce=int,
        choices=[
            (60, _("every minute")),
            (300, _("every 5 minutes")),
            (900, _("every 15 minutes")),
            (3600, _("every hour")),
        ],
        initial=300,
        label=_("Check for mail"),
    )
    poll_interval_max = forms.TypedChoiceField(
        coerce=int,
        empty_value=None,
        choices=[
            ("", _("keep checking at that rate")),
            (1800, _("check less often, down to every 30 minutes")),
            (3600, _("check less often, down to every hour")),
            (3 * 3600, _("check less often, down to every 3 hours")),
        ],
        initial=1800,
        required=False,
        label=_("While no mail comes"),
        help_text=_("Each check that finds nothing waits a little longer; new mail brings the rate back at once."),
    )
    deliver_to = forms.ChoiceField(
        choices=[("inbox", _("Inbox"))],
        required=False,
        label=_("Put new mail in"),
        help_text=_("Archive or one of your folders skips the inbox, as Gmail's mail fetcher allowed."),
    )
    auth_mechanism = forms.ChoiceField(
        choices=[("", _("Automatic: the safest method the server accepts")), *AuthMechanism.choices],
        required=False,
        label=_("Login method"),
    )
    tls_fingerprint = forms.CharField(
        max_length=95,
        required=False,
        label=_("Pinned certificate (SHA-256)"),
        help_text=_("Only for a server with a self-signed certificate: its SHA-256 fingerprint, as 64 hex digits."),
    )
    max_message_mb = forms.IntegerField(
        min_value=1,
        max_value=2048,
        required=False,
        label=_("Largest message to fetch (MB)"),
        help_text=_("Larger messages stay on the server and are listed on the account page."),
    )
    save_anyway = forms.BooleanField(required=False, label=_("Save even though the connection test failed"))

    def __init__(self, *args, deliver_choices: list[tuple[str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if deliver_choices is not None:  # DELIVERY_FOLDERS and the owner's own folders (the view asks the mailbox)
            self.fields["deliver_to"].choices = deliver_choices

    def clean_deliver_to(self) -> str:
        return self.cleaned_data["deliver_to"] or "inbox"

    def clean_tls_fingerprint(self) -> str:
        value = self.cleaned_data["tls_fingerprint"].strip()
        if not value:
            return ""
        try:
            return normalize_fingerprint(value)
        except ValueError as exc:
            raise ValidationError(str(exc).capitalize() + ".") from None

    def clean_host(self) -> str:
        host = self.cleaned_data["host"].strip().lower().rstrip(".")
        if not host or any(c.isspace() or c in "/@:" for c in host):
            raise ValidationError(_("Enter a host name such as pop.example.com (no scheme, port or user)."))
        return host

    def clean(self):
        data = super().clean()
        if data.get("port") is None and data.get("security"):
            data["port"] = DEFAULT_PORTS[Security(data["security"])]
        policy, days = data.get("policy"), data.get("days")
        if days and policy == "delete":
            self.add_error("days", _("Move already deletes each message from the server as soon as it is stored."))
        elif days and policy == "keep":
            data["policy"] = f"days:{days}"
        elif days and policy == "mirror":
            data["policy"] = f"mirror+days:{days}"
        if data.get("policy"):
            try:
                Policy.parse(data["policy"])
            except ValidationError as exc:
                self.add_error("policy", exc)
        slowest, interval = data.get("poll_interval_max"), data.get("poll_interval")
        if slowest and interval and slowest <= interval:
            self.add_error(
                "poll_interval_max",
                _("Choose a longer time than how often mail is checked, or keep checking at that rate."),
            )
        return data


class MailAccountEditForm(MailAccountForm):
    """The same settings; the password may stay as it is."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["password"].required = False
        self.fields["password"].help_text = _("Leave empty to keep the saved password.")
        self.fields["password"].widget = forms.PasswordInput(render_value=False)
        del self.fields["address"]

    @staticmethod
    def initial_for(account: MailAccount) -> dict:
        policy = account.parsed_policy
        if policy.delete_after_fetch:
            choice = "delete"
        elif policy.mirror:
            choice = "mirror"
        else:
            choice = "keep"
        return {
            "label": account.label,
            "host": account.host,
            "security": account.security,
            "port": account.port,
            "username": account.username,
            "policy": choice,
            "days": policy.delete_after_days,
            "poll_interval": account.poll_interval,
            "poll_interval_max": account.poll_interval_max or "",
            "deliver_to": account.deliver_to,
            "auth_mechanism": account.auth_mechanism,
            "tls_fingerprint": account.tls_fingerprint,
            "max_message_mb": account.max_message_bytes // (1024 * 1024) if account.max_message_bytes else None,
        }
