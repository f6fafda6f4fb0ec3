from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _


class FirstRunForm(UserCreationForm):
    """The first administrator, created on a fresh installation (``views_auth.first_run``)."""

    email = forms.EmailField(required=False, label=_("E-mail address"))

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")


class SignupForm(UserCreationForm):
    email = forms.EmailField(label=_("E-mail address"), help_text=_("For password resets; never shared."))

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")

    def __init__(self, *args, fixed_email: str = "", unique_email: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.unique_email = unique_email
        if fixed_email:  # an invitation sent to an address is for that address
            self.fields["email"].initial = fixed_email
            self.fields["email"].disabled = True

    def clean_email(self) -> str:
        email = self.cleaned_data["email"]
        # Open sign-up answers the same either way (see views.signup_view); an invited person is told.
        if self.unique_email and get_user_model().objects.filter(email__iexact=email).exists():
            raise ValidationError(_("This address already has an account: sign in, or reset its password."))
        return email


class EmailForm(forms.Form):
    email = forms.EmailField(label=_("E-mail address"))


class CodeForm(forms.Form):
    token = forms.CharField(
        label=_("Code"),
        max_length=20,
        help_text=_("The 6-digit code from your authenticator app, or one of your backup codes."),
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )


class PasswordConfirmForm(forms.Form):
    """Re-enter the password before something that cannot be undone."""

    password = forms.CharField(
        label=_("Your password"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise ValidationError(_("That is not your password."))
        return password


class InvitationForm(forms.Form):
    email = forms.EmailField(
        label=_("E-mail address"), required=False, help_text=_("Optional: webpop sends the link there.")
    )
    days = forms.IntegerField(label=_("Valid for (days)"), min_value=1, max_value=365)
