"""Per-user preferences: time zone, conversations, reading pane; the language form posts to Django's set_language."""

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
from django.views.decorators.http import require_POST

from webpop.lib import pagecache

from .models import (
    COMPOSE_FORMAT_CHOICES,
    DEFAULT_UNDO_SEND_SECONDS,
    READING_PANE_CHOICES,
    UNDO_SEND_CHOICES,
    Profile,
)

ZONES = sorted(zoneinfo.available_timezones())
ZONES_SET = frozenset(ZONES)


class PreferencesForm(forms.Form):
    time_zone = forms.ChoiceField(
        choices=[("", _("The site's time zone"))] + [(z, z.replace("_", " ")) for z in ZONES],
        required=False,
        label=_("Time zone"),
    )
    conversations = forms.BooleanField(required=False, label=_("Group messages into conversations"))
    inbox_tabs = forms.BooleanField(
        required=False,
        label=_("Sort the Inbox into tabs"),
        help_text=_(
            "Primary, Updates, Promotions and Forums, each with its unread count. "
            "Mail from people you know stays in Primary."
        ),
    )
    reading_pane = forms.ChoiceField(
        choices=READING_PANE_CHOICES,
        widget=forms.RadioSelect,
        required=False,  # not sent: the saved choice stays
        label=_("Reading pane"),
        help_text=_("On a wide screen a message can open beside the list. On a phone it always opens on its own."),
    )
    undo_send_seconds = forms.TypedChoiceField(
        choices=UNDO_SEND_CHOICES,
        coerce=int,
        initial=DEFAULT_UNDO_SEND_SECONDS,
        required=False,  # not sent: the saved choice stays
        label=_("Undo send"),
        help_text=_("After Send, a message waits this long, with an Undo, before it leaves."),
    )
    compose_format = forms.ChoiceField(
        choices=COMPOSE_FORMAT_CHOICES,
        widget=forms.RadioSelect,
        required=False,  # not sent: the saved choice stays
        label=_("Write new messages in"),
        help_text=_(
            "Rich text has bold, lists, links and pictures, and is always sent with a plain text version. "
            "Each message can switch."
        ),
    )


@transaction.atomic
def save_preferences(
    user,
    *,
    time_zone: str,
    conversations: bool,
    reading_pane: str | None = None,
    undo_send_seconds: int | None = None,
    compose_format: str | None = None,
    inbox_tabs: bool | None = None,
) -> Profile:
    """Saves the choices; ``reading_pane``, ``undo_send_seconds`` or ``compose_format`` None keeps the one saved."""
    profile, _ = Profile.objects.select_for_update().get_or_create(user=user)
    profile.time_zone = time_zone
    profile.time_zone_chosen = True
    profile.conversations = conversations
    if reading_pane is not None:
        profile.reading_pane = reading_pane
    if undo_send_seconds is not None:
        profile.undo_send_seconds = undo_send_seconds
    if compose_format is not None:
        profile.compose_format = compose_format
    if inbox_tabs is not None:
        profile.inbox_tabs = inbox_tabs
    profile.save(
        update_fields=[
            "time_zone",
            "time_zone_chosen",
            "conversations",
            "reading_pane",
            "undo_send_seconds",
            "compose_format",
            "inbox_tabs",
        ]
    )
    pagecache.touch([user.pk])  # list pages show these choices
    return profile


def adopt_browser_time_zone(user, name: str) -> bool:
    """The browser's time zone for a user who has none chosen yet; False when one was, or ``name`` is no zone.

    Once only: a conditional update, so Preferences decide from then on (or already did).
    """
    if name not in ZONES_SET:
        return False
    Profile.objects.get_or_create(user=user)
    return Profile.objects.filter(user=user, time_zone_chosen=False).update(time_zone=name, time_zone_chosen=True) == 1


@login_required
@require_POST
def browser_time_zone(request: HttpRequest) -> HttpResponse:
    """The page's script posts the browser's time zone once, at the first sign-in (base.html asks for it)."""
    if adopt_browser_time_zone(request.user, request.POST.get("time_zone", "")[:64]):
        request.session["time_zone"] = request.POST["time_zone"]
    request.session["time_zone_ask"] = False  # asked: an invalid answer is ignored, not asked for again
    pagecache.touch([request.user.id])  # cached list pages still ask
    return HttpResponse(status=204)


@login_required
def preferences(request: HttpRequest) -> HttpResponse:
    profile = Profile.objects.filter(user=request.user).first() or Profile(user=request.user)
    initial = {
        "time_zone": profile.time_zone,
        "conversations": profile.conversations,
        "reading_pane": profile.reading_pane,
        "undo_send_seconds": profile.undo_send_seconds,
        "compose_format": profile.compose_format,
        "inbox_tabs": profile.inbox_tabs,
    }
    form = PreferencesForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        choices = {
            **data,
            "reading_pane": data["reading_pane"] or None,
            "undo_send_seconds": data["undo_send_seconds"] if data["undo_send_seconds"] != "" else None,
            "compose_format": data["compose_format"] or None,
        }
        profile = save_preferences(request.user, **choices)
        request.session["time_zone"] = profile.time_zone
        request.session["time_zone_ask"] = False
        pagecache.touch([request.user.id])  # cached list pages may still ask for the browser's zone
        request.session["conversations"] = profile.conversations
        request.session["reading_pane"] = profile.reading_pane
        request.session["inbox_tabs"] = profile.inbox_tabs
        messages.success(request, gettext("Preferences saved."))
        return redirect("accounts:preferences")
    # The language is kept in Django's language cookie (no account migration needed): the form
    # below posts to django.views.i18n.set_language, which checks the CSRF token and the choice.
    return render(request, "accounts/preferences.html", {"form": form, "languages": settings.LANGUAGES})
