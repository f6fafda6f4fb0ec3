"""Incoming rules: list, add, delete, and run one on mail already stored."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from accounts.models import MailAccount

from . import folders, rules
from .models import Folder, Rule


class RuleForm(forms.Form):
    field = forms.ChoiceField(choices=Rule.Field.choices, label=pgettext_lazy("condition of a rule", "When"))
    contains = forms.CharField(max_length=200, label=_("contains"))
    action = forms.ChoiceField(choices=Rule.Action.choices, label=_("then"))
    folder = forms.ChoiceField(choices=(), required=False, label=_("Folder (for Move)"))
    account = forms.ModelChoiceField(
        queryset=MailAccount.objects.none(), required=False, empty_label=_("All accounts"), label=_("For mail from")
    )

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["folder"].choices = folders.target_choices(
            owner.id, system=[(f.value, f.label) for f in (Folder.INBOX, Folder.ARCHIVE)]
        )
        self.fields["account"].queryset = MailAccount.objects.filter(owner=owner)


@login_required
def rule_list(request: HttpRequest) -> HttpResponse:
    form = RuleForm(request.POST or None, owner=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            rule = rules.create(request.user.id, **form.cleaned_data)
        except rules.RuleError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, gettext("Added the rule “%(rule)s”. It applies to new mail.") % {"rule": rule})
            return redirect("mailbox:rules")
    rows = Rule.objects.filter(owner=request.user).select_related("account")
    labels = dict(folders.target_choices(request.user.id))
    context = {"form": form, "rows": [(rule, labels.get(rule.folder, "")) for rule in rows]}
    return render(request, "mailbox/rules.html", context, status=400 if form.errors else 200)


def _own_rule(request: HttpRequest, rule_id: int) -> Rule:
    return get_object_or_404(Rule, id=rule_id, owner=request.user)


@login_required
@require_POST
def rule_delete(request: HttpRequest, rule_id: int) -> HttpResponse:
    _own_rule(request, rule_id).delete()
    messages.success(request, gettext("Rule deleted."))
    return redirect("mailbox:rules")


@login_required
@require_POST
def rule_run(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = _own_rule(request, rule_id)
    changed = rules.run_on_existing(request.user.id, rule)
    messages.success(
        request, gettext("Applied “%(rule)s” to existing mail: %(count)d changed.") % {"rule": rule, "count": changed}
    )
    return redirect("mailbox:rules")
