"""'Select all N' in a folder, view or search: how many there are, starting the job, its progress.

The work itself runs in the background (mailbox/bulkjobs.py); these views only count,
record the job (actions.start_bulk_job) and report on it.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect
from django.utils.formats import number_format
from django.utils.translation import gettext, ngettext

from . import actions, bulkjobs, folders, tabs, virtual
from .categories import Category
from .models import BulkJob, Folder

# Toolbar actions a bulk job can do, as (job action, target folder); moves name their folder.
FLAG_ACTIONS = {"read", "unread", "star", "unstar"}
MOVES = {"archive": Folder.ARCHIVE, "inbox": Folder.INBOX, "spam": Folder.SPAM, "trash": Folder.TRASH}


def criteria_from(params: QueryDict) -> dict:
    """The list a page shows, from its parameters: a search (``q``), a view or a folder, and ``account``."""
    criteria: dict = {}
    if params.get("q", "").strip():
        criteria["query"] = params["q"].strip()[:500]
    elif params.get("view"):
        criteria["view"] = params["view"]
    else:
        criteria["folder"] = params.get("folder", "")
        if params.get("tab"):  # an Inbox tab (mailbox/tabs.py)
            criteria["tab"] = params["tab"]
    if params.get("account", "").isdigit():
        criteria["account"] = int(params["account"])
    return criteria


def _where(owner_id: int, criteria: dict) -> str:
    if criteria.get("query"):
        return ""
    if criteria.get("view"):
        return str(virtual.VIEWS[criteria["view"]].label)
    if criteria.get("tab") and Category.from_slug(criteria["tab"]) is not None:
        return str(tabs.LABELS[Category.from_slug(criteria["tab"])])
    return folders.label_for(owner_id, criteria["folder"]) or ""


@login_required
def count(request: HttpRequest) -> JsonResponse:
    """How many messages a list has in all its pages, and what the "Select all" bar says about them."""
    criteria = criteria_from(request.GET)
    try:
        total = bulkjobs.matching(request.user.id, criteria).count()
    except bulkjobs.CriteriaError:
        raise Http404 from None
    shown = {"count": number_format(total, force_grouping=True), "folder": _where(request.user.id, criteria)}
    if criteria.get("query"):
        offer = ngettext(
            "Select the %(count)s message matching this search",
            "Select all %(count)s messages matching this search",
            total,
        )
        chosen = ngettext(
            "The %(count)s message matching this search is selected.",
            "All %(count)s messages matching this search are selected.",
            total,
        )
    else:
        offer = ngettext(
            "Select the %(count)s message in %(folder)s", "Select all %(count)s messages in %(folder)s", total
        )
        chosen = ngettext(
            "The %(count)s message in %(folder)s is selected.",
            "All %(count)s messages in %(folder)s are selected.",
            total,
        )
    return JsonResponse({"count": total, "offer": offer % shown, "chosen": chosen % shown})


def start(request: HttpRequest, action: str, moving: bool, back: str) -> HttpResponse:
    """The toolbar's action on every message of the list (``criteria`` posted with it), as a background job."""
    if moving:
        job_action, target = "move", action
    elif action in MOVES:
        job_action, target = "move", MOVES[action]
    elif action in FLAG_ACTIONS:
        job_action, target = action, ""
    else:
        messages.error(request, gettext("This action works on selected messages only."))
        return redirect(back)
    criteria = criteria_from(QueryDict(request.POST.get("criteria", "")))
    try:
        job = actions.start_bulk_job(request.user.id, criteria, job_action, target)
    except actions.BulkJobsBusy:
        messages.error(request, gettext("Wait until your other actions on whole folders are done."))
        return redirect(back)
    except (actions.ActionError, bulkjobs.CriteriaError):
        messages.error(request, gettext("Unknown action."))
        return redirect(back)
    request.session["bulk_job"] = job.id
    request.session["undo"] = {"job": job.id}
    return redirect(back)


def page_job(request: HttpRequest) -> tuple[BulkJob | None, str]:
    """The job the list page reports on (the session's last), and what it says; a finished one is shown once."""
    job_id = request.session.get("bulk_job")
    if not job_id:
        return None, ""
    job = BulkJob.objects.filter(id=job_id, owner=request.user).select_related("undo_of").first()
    if job is None or not job.active:
        request.session.pop("bulk_job", None)
    return job, describe(request.user.id, job) if job else ""


def describe(owner_id: int, job: BulkJob) -> str:
    """What a job is doing or did, in a sentence."""
    numbers = {"count": number_format(job.changed, force_grouping=True)}
    if job.active:
        numbers = {
            "done": number_format(job.done, force_grouping=True),
            "total": number_format(job.total, force_grouping=True),
        }
        if job.action == "undo":
            return gettext("Undoing: %(done)s of %(total)s…") % numbers
        return gettext("Working on it: %(done)s of %(total)s messages…") % numbers
    if job.state == BulkJob.State.FAILED:
        return gettext("The action stopped before every message was changed.")
    if job.state == BulkJob.State.CANCELLED:
        return gettext("Stopped.")
    if job.action == "undo":
        return gettext("Undone: %(count)s restored.") % numbers
    if job.action == "move":
        text = ngettext(
            "%(count)s message moved to %(folder)s.", "%(count)s messages moved to %(folder)s.", job.changed
        )
        return text % {**numbers, "folder": folders.label_for(owner_id, job.folder) or ""}
    texts = {
        "read": ngettext("%(count)s message marked read.", "%(count)s messages marked read.", job.changed),
        "unread": ngettext("%(count)s message marked unread.", "%(count)s messages marked unread.", job.changed),
        "star": ngettext("%(count)s message starred.", "%(count)s messages starred.", job.changed),
        "unstar": ngettext(
            "Star removed from %(count)s message.", "Stars removed from %(count)s messages.", job.changed
        ),
    }
    return texts[job.action] % numbers


@login_required
def status(request: HttpRequest, job_id: int) -> JsonResponse:
    """A job's progress, for the page to show while it runs (another user's job is a 404)."""
    job = get_object_or_404(BulkJob, id=job_id, owner=request.user)
    return JsonResponse(
        {
            "state": job.state,
            "active": job.active,
            "done": job.done,
            "total": job.total,
            "text": describe(request.user.id, job),
        }
    )
