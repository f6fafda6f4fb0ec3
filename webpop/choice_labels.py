"""Labels of model field choices, marked for translation here instead of in the models.

Wrapping a field's choices in gettext_lazy inside the model would make Django see a changed
field and ask for a migration; marking the same texts here puts them in the catalogue, and
``translated`` / ``{% translate obj.get_FIELD_display %}`` look them up when shown.
tests/test_i18n.py checks that every choice label of our models is listed.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy, gettext_noop

LABELS = [
    # accounts.MailAccount.security
    gettext_noop("SSL/TLS (implicit, usually port 995)"),
    gettext_noop("STARTTLS (STLS, usually port 110)"),
    gettext_noop("None: unencrypted (password sent in clear text)"),
    # accounts.MailAccount.auth_mechanism (names of the methods, mostly kept as they are)
    gettext_noop("SCRAM-SHA-256"),
    gettext_noop("SCRAM-SHA-1"),
    gettext_noop("CRAM-MD5"),
    gettext_noop("APOP"),
    gettext_noop("SASL PLAIN"),
    gettext_noop("SASL LOGIN"),
    gettext_noop("USER/PASS"),
    # accounts.MailAccount.last_error_class
    gettext_noop("Host name not found"),
    gettext_noop("Connection refused"),
    gettext_noop("Timed out"),
    gettext_noop("Network error"),
    gettext_noop("Storage quota full"),
    gettext_noop("TLS certificate not trusted"),
    gettext_noop("Authentication failed"),
    gettext_noop("Private address refused"),
    gettext_noop("Server temporarily unavailable"),
    gettext_noop("Server protocol error"),
    gettext_noop("Server error"),
    gettext_noop("Stored password unreadable"),
    gettext_noop("Internal error"),
    # accounts.Profile.reading_pane
    gettext_noop("Off: open messages on their own page"),
    gettext_noop("Right of the list"),
    gettext_noop("Below the list"),
    # accounts.Profile.undo_send_seconds
    gettext_noop("Off"),
    gettext_noop("5 seconds"),
    gettext_noop("10 seconds"),
    gettext_noop("20 seconds"),
    gettext_noop("30 seconds"),
    # accounts.Profile.compose_format
    gettext_noop("Rich text"),
    gettext_noop("Plain text"),
    # mailbox.Message.server_state, mailbox.UidlAlias.server_state
    gettext_noop("On server"),
    gettext_noop("Delete pending"),
    gettext_noop("Gone from server"),
    # mailbox.FetchFailure.reason
    gettext_noop("Could not be fetched or stored"),
    gettext_noop("Larger than the account's size limit"),
    # mailbox.DamagedFile.kind
    gettext_noop("Missing"),
    gettext_noop("Corrupt"),
    # mailbox.Rule.field, mailbox.Rule.action
    gettext_noop("From"),
    gettext_noop("To or Cc"),
    gettext_noop("Subject"),
    gettext_noop("Move to folder"),
    gettext_noop("Star"),
    gettext_noop("Mark as read"),
    gettext_noop("Mark as spam"),
    # mailbox.ImportJob.state
    gettext_noop("Waiting"),
    gettext_noop("Importing"),
    gettext_noop("Done"),
    gettext_noop("Failed"),
    # mailbox.BulkJob.state (Waiting, Done and Failed as above)
    gettext_noop("Running"),
    gettext_noop("Stopped"),
    # push.PushSettings.content
    gettext_noop("Only how many unread messages there are"),
    gettext_noop("The sender and subject of the newest message"),
]


def translated(choices: Iterable[tuple[object, str | Promise]]) -> list[tuple[object, Promise]]:
    """A form field's choices with each label translated when shown."""
    return [(value, gettext_lazy(str(label))) for value, label in choices]
