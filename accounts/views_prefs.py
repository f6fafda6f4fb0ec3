"""Per-user preferences: time zone, conversations; the language form posts to Django's set_language."""

from __future__ import annotations

import zoneinfo

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .models import Profile

ZONES = sorted(zoneinfo.available_timezones())


class PreferencesForm(forms.Form):
    time_zone = forms.ChoiceField(
        choices=[("", _("The site's time zone"))] + [(z, z.replace("_", " ")) for z in ZONES],
        required=False,
        label=_("Time zone"),
    )
    conversations = forms.BooleanField(required=False, label=_("Group messages into conversations"))


@transaction.atomic
def save_preferences(user, *, time_zone: str, conversations: bool) -> Profile:
    profile, _ = Profile.objects.select_for_update().get_or_create(user=user)
    profile.time_zone = time_zone
    profile.conversations = conversations
    profile.save(update_fields=["time_zone", "conversations"])
    return profile


@login_required
def preferences(request: HttpRequest) -> HttpResponse:
    profile = Profile.objects.filter(user=request.user).first() or Profile(user=request.user)
    initial = {"time_zone": profile.time_zone, "conversations": profile.conversations}
    form = PreferencesForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        save_preferences(request.user, **form.cleaned_data)
        request.session["time_zone"] = form.cleaned_data["time_zone"]
        request.session["conversations"] = form.cleaned_data["conversations"]
        messages.success(request, gettext("Preferences saved."))
        return redirect("accounts:preferences")
    # The language is kept in Django's language cookie (no account migration needed): the form
    # below posts to django.views.i18n.set_language, which checks the CSRF token and the choice.
    return render(request, "accounts/preferences.html", {"form": form, "languages": settings.LANGUAGES})
