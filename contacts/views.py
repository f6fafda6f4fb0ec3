from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from . import actions, history, mail_addresses, search, vcard
from .forms import ContactForm, ImportForm
from .models import Contact

PAGE_SIZE = 50
SUGGESTIONS = 10  # addresses the compose form offers at once


def _own(request: HttpRequest, contact_id: int) -> Contact:
    return get_object_or_404(Contact, id=contact_id, owner=request.user)


@login_required
@require_GET
def contact_list(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()
    contacts = Contact.objects.filter(owner=request.user).prefetch_related("emails")
    if q:
        for word in search.query_words(q):
            contacts = contacts.filter(keys__key__startswith=word)
        contacts = contacts.distinct()
    order = request.GET.get("order") == "name"
    contacts = contacts.order_by("name", "id") if order else contacts.order_by("-rank", "id")
    page = Paginator(contacts, PAGE_SIZE).get_page(request.GET.get("page"))
    empty_book = not q and page.paginator.count == 0
    return render(request, "contacts/list.html", {"page": page, "q": q, "by_name": order, "empty_book": empty_book})


@login_required
def add(request: HttpRequest) -> HttpResponse:
    form = ContactForm(request.POST or None, initial={"emails": request.GET.get("email", "")})
    if request.method == "POST" and form.is_valid():
        contact, taken = actions.create(request.user.id, form.card())
        _warn_taken(request, taken)
        return redirect("contacts:detail", contact.id)
    return render(request, "contacts/edit.html", {"form": form, "contact": None})


@login_required
@require_GET
def detail(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = _own(request, contact_id)
    emails = [e.address for e in contact.emails.all()]
    return render(
        request,
        "contacts/detail.html",
        {"contact": contact, "emails": emails, "recent": history.recent_mail(request.user.id, emails)},
    )


@login_required
def edit(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = _own(request, contact_id)
    initial = {
        "name": contact.name,
        "emails": "\n".join(contact.emails.values_list("address", flat=True)),
        "notes": contact.notes,
    }
    form = ContactForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        contact, taken = actions.update(request.user.id, contact.id, form.card())
        _warn_taken(request, taken)
        messages.success(request, _("Contact saved."))
        return redirect("contacts:detail", contact.id)
    return render(request, "contacts/edit.html", {"form": form, "contact": contact})


def _warn_taken(request: HttpRequest, taken: list[str]) -> None:
    if taken:
        messages.warning(
            request,
            _("Not added, another contact has them: %(list)s") % {"list": ", ".join(taken)},
        )


@login_required
@require_POST
def delete(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = _own(request, contact_id)
    actions.delete(request.user.id, contact.id)
    messages.success(request, _("Contact deleted."))
    return redirect("contacts:list")


@login_required
@require_GET
def suggest(request: HttpRequest) -> JsonResponse:
    """Contacts first, then people from the user's own mail who are not contacts (yet), up to LIMIT."""
    q = request.GET.get("q", "")[:320]
    results = search.suggest(request.user.id, q, limit=SUGGESTIONS)
    if len(results) < SUGGESTIONS:
        known = {r["address"].lower() for r in results}
        more = mail_addresses.suggest(request.user.id, q, limit=SUGGESTIONS)
        results += [r for r in more if r["address"].lower() not in known][: SUGGESTIONS - len(results)]
    return JsonResponse({"results": results})


@login_required
def import_vcards(request: HttpRequest) -> HttpResponse:
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data["file"].read()
        try:
            cards = vcard.parse(data.decode("utf-8-sig", "replace"))
        except vcard.VCardError:
            form.add_error("file", _("This file holds no vCard that can be read."))
        else:
            done = actions.import_cards(request.user.id, cards)
            messages.success(
                request,
                ngettext("%(n)d contact added", "%(n)d contacts added", done["created"]) % {"n": done["created"]}
                + ", "
                + ngettext("%(n)d updated.", "%(n)d updated.", done["updated"]) % {"n": done["updated"]},
            )
            return redirect("contacts:list")
    return render(request, "contacts/import.html", {"form": form})


@login_required
@require_GET
def export_vcards(request: HttpRequest) -> HttpResponse:
    version = "3.0" if request.GET.get("version") == "3.0" else "4.0"
    contacts = Contact.objects.filter(owner=request.user).prefetch_related("emails").order_by("name", "id")
    cards = [actions.Card(name=c.name, emails=[e.address for e in c.emails.all()], notes=c.notes) for c in contacts]
    response = HttpResponse(vcard.serialize(cards, version), content_type="text/vcard; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, "contacts.vcf")
    return response


@login_required
@require_POST
def seed(request: HttpRequest) -> HttpResponse:
    count = actions.seed_from_sent(request.user.id)
    if count:
        messages.success(request, _("Contacts filled in from your sent mail."))
    else:
        messages.info(request, _("Nothing to add: contacts are already recorded from your mail."))
    return redirect("contacts:list")
