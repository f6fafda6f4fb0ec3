"""The address book: people the user writes to, each with several addresses, ranked for suggestions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from spam.trust import address_skeleton


class Contact(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=255, blank=True)
    notes = models.TextField(blank=True)
    # Frecency in log space (contacts/ranking.py): log2(decayed score) + days since the epoch / half-life.
    # One stored number orders contacts by their decayed score at any moment, without rewriting every row.
    rank = models.FloatField(default=0.0)
    times_contacted = models.PositiveIntegerField(default=0)
    last_contacted = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["owner", "-rank"], name="contacts_owner_rank_idx")]

    def __str__(self) -> str:
        # Not the name: this names the row in the admin and its log; the name is the user's own data.
        return f"contact {self.pk}"


class ContactEmail(models.Model):
    """One address of a contact. An address belongs to at most one contact of a user."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="emails")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    address = models.CharField(max_length=320)
    address_key = models.CharField(max_length=320, help_text="The address in lower case.")
    position = models.PositiveSmallIntegerField(default=0)
    # What the domain can be mistaken for (spam.trust.skeleton): a sender's lookalike check is one indexed lookup.
    domain_skeleton = models.CharField(max_length=320, blank=True, default="")

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "address_key"], name="contacts_email_owner_address_uniq")
        ]
        indexes = [models.Index(fields=["owner", "domain_skeleton"], name="contacts_email_skeleton_idx")]

    def __str__(self) -> str:
        return f"address {self.pk} of contact {self.contact_id}"

    @staticmethod
    def skeleton_of(address: str) -> str:
        return address_skeleton(address)


class ContactKey(models.Model):
    """A normalized word of a contact's name or address (and each whole address): what prefix search reads.

    The (owner, key) index uses varchar_pattern_ops on PostgreSQL so ``LIKE 'prefix%'`` is an index range
    scan whatever the database's collation; SQLite uses the plain index for the same range.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="keys")
    key = models.CharField(max_length=320)

    class Meta:
        indexes = [
            models.Index(
                fields=["owner", "key"],
                name="contacts_key_prefix_idx",
                opclasses=["int4_ops", "varchar_pattern_ops"],
                include=["contact"],  # PostgreSQL reads a prefix's contact ids from the index alone
            )
        ]
        constraints = [models.UniqueConstraint(fields=["contact", "key"], name="contacts_key_uniq")]

    def __str__(self) -> str:
        return f"search key {self.pk} of contact {self.contact_id}"
