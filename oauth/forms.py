from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.forms import DELIVERY_FOLDERS
from mailbox import folders

POLICY_CHOICES = [
    ("keep", _("Keep: leave every message on the server (other mail programs still see it)")),
    ("mirror", _("Mirror: when I delete a message here, delete it on the server too")),
    ("delete", _("Move: delete each message from the server once webpop has stored it safely")),
]


class ConfirmForm(forms.Form):
    """The few settings of a signed-in account; the server settings come from the provider."""

    label = forms.CharField(max_length=100, required=False, label=_("Name"), help_text=_("Optional, e.g. “Work”."))
    policy = forms.ChoiceField(choices=POLICY_CHOICES, initial="keep", label=_("Server copy"), widget=forms.RadioSelect)
    deliver_to = forms.ChoiceField(choices=DELIVERY_FOLDERS, initial="inbox", label=_("Put new mail in"))

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["deliver_to"].choices = folders.target_choices(owner.id, system=DELIVERY_FOLDERS)
