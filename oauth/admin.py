from django import forms
from django.contrib import admin

from .models import Grant, ProviderCredentials


class ProviderCredentialsForm(forms.ModelForm):
    client_secret = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Stored encrypted and never shown again. Leave empty to keep the saved secret.",
    )

    class Meta:
        model = ProviderCredentials
        fields = ("provider", "client_id", "client_secret", "tenant")

    def clean(self):
        data = super().clean()
        if not data.get("client_secret") and not self.instance.client_secret_encrypted:
            self.add_error("client_secret", "Enter the client secret.")
        return data

    def save(self, commit=True):
        if self.cleaned_data.get("client_secret"):
            self.instance.set_client_secret(self.cleaned_data["client_secret"])
        return super().save(commit)


@admin.register(ProviderCredentials)
class ProviderCredentialsAdmin(admin.ModelAdmin):
    form = ProviderCredentialsForm
    list_display = ("provider", "client_id", "tenant", "updated_at")


@admin.register(Grant)
class GrantAdmin(admin.ModelAdmin):
    """Who signed in with what; tokens are never shown. Deleting a grant is done by removing its account."""

    list_display = ("account", "provider", "email", "mechanism", "refreshed_at", "revoked_at")
    list_filter = ("provider", "mechanism")
    search_fields = ("email", "account__owner__username")
    exclude = ("refresh_token_encrypted", "access_token_encrypted")
    readonly_fields = (
        "account",
        "provider",
        "subject",
        "email",
        "scope",
        "access_token_expires_at",
        "refreshed_at",
        "revoked_at",
        "revoked_reason",
        "created_at",
    )

    def has_add_permission(self, request) -> bool:
        return False
