from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import Count, Exists, OuterRef, Subquery, Sum
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import MailAccount, Profile
from webpop.lib import admin as libadmin

from . import actions as user_actions
from . import audit, notify, operators, signup, twofactor
from .models import AuditEvent, Invitation

User = get_user_model()


class ProfileInline(admin.StackedInline):
    model = Profile
    can_delete = False
    max_num = 1
    verbose_name_plural = _("Quotas and preferences")
    fields = ("max_accounts", "storage_quota_bytes", "send_rate_per_hour", "time_zone", "conversations")


admin.site.unregister(User)


def _above(request, user) -> bool:
    """Whether ``user`` is out of reach of the request's user: only a superuser changes a superuser."""
    return user.is_superuser and not request.user.is_superuser


@admin.register(User)
class WebpopUserAdmin(UserAdmin):
    """Django's user admin, with quotas inline; deleting goes through users.actions.delete_user.

    The permission to change users is not a way up: without being a superuser one changes
    no superuser (nor their password), and grants no permissions or groups, one's own included.
    """

    inlines = [ProfileInline]
    list_display = (
        "username",
        "email",
        "is_active",
        "is_staff",
        "mail_account_count",
        "max_accounts",
        "storage_used",
        "storage_quota",
        "send_rate",
        "two_factor",
        "last_login",
    )

    # No admin for sessions themselves: their keys would show in URLs and logs.
    actions = ["sign_out_everywhere", "turn_off_two_factor"]
    GRANTING = ("is_superuser", "groups", "user_permissions")

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and not (obj is not None and _above(request, obj))

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and not (obj is not None and _above(request, obj))

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        if request.user.is_superuser or obj is None:  # the add form sets a name and password only
            return fields
        return fields + self.GRANTING

    def _within_reach(self, request, queryset) -> list:
        users = [user for user in queryset if not _above(request, user)]
        if len(users) < len(queryset):
            self.message_user(request, _("Only a superuser can act on a superuser: left them out."), messages.ERROR)
        return users

    def get_queryset(self, request):
        confirmed = TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
        # Every message belongs to one of its owner's accounts.
        used = (
            MailAccount.objects.filter(owner=OuterRef("pk"))
            .values("owner")
            .annotate(total=Sum("messages__size"))
            .values("total")
        )
        return (
            super()
            .get_queryset(request)
            .select_related("profile")
            .annotate(
                _accounts=Count("mail_accounts", distinct=True),
                _two_factor=Exists(confirmed),
                _storage_used=Subquery(used),
            )
        )

    @staticmethod
    def _profile(obj) -> Profile:
        try:
            return obj.profile
        except Profile.DoesNotExist:
            return Profile(user=obj)

    @admin.display(description=_("POP3 accounts"), ordering="_accounts")
    def mail_account_count(self, obj) -> int:
        return obj._accounts

    @admin.display(description=_("Max accounts"))
    def max_accounts(self, obj) -> str:
        limit = self._profile(obj).effective_max_accounts
        return "∞" if limit is None else str(limit)

    @admin.display(description=_("Storage used"), ordering="_storage_used")
    def storage_used(self, obj) -> str:
        return f"{(obj._storage_used or 0) / (1024 * 1024):.1f} MB"

    @admin.display(description=_("Storage quota"))
    def storage_quota(self, obj) -> str:
        quota = self._profile(obj).effective_quota_bytes
        return "∞" if quota is None else f"{quota / (1024 * 1024):.0f} MB"

    @admin.display(description=_("Sends per hour"))
    def send_rate(self, obj) -> int:
        return self._profile(obj).effective_send_rate_per_hour

    @admin.display(description=_("2FA"), boolean=True, ordering="_two_factor")
    def two_factor(self, obj) -> bool:
        return obj._two_factor

    @admin.action(description=_("Sign out of every session"), permissions=["change"])
    def sign_out_everywhere(self, request, queryset) -> None:
        ended = 0
        for user in self._within_reach(request, queryset):
            count = user_actions.end_other_sessions(user, request.session.session_key)
            audit.record(request, audit.SESSION_ENDED, f"user:{user.get_username()}", count=count, by_admin=True)
            ended += count
        self.message_user(request, _("Ended %(n)d sessions.") % {"n": ended})

    @admin.action(description=_("Turn off two-factor sign-in (lost phone and backup codes)"), permissions=["change"])
    def turn_off_two_factor(self, request, queryset) -> None:
        users = self._within_reach(request, queryset)
        for user in users:
            twofactor.disable(user)
            audit.record(request, audit.TWOFACTOR_DISABLED, f"user:{user.get_username()}", by_admin=True)
            notify.security_notice(request, user, _("an administrator turned off your two-factor sign-in"))
        self.message_user(request, _("Two-factor sign-in is off for %(n)d users.") % {"n": len(users)})

    def get_deleted_objects(self, objs, request):
        """A summary instead of Django's list of every related row (a user may have 100,000 messages)."""
        users = list(objs)
        model_count = {
            _("users"): len(users),
            _("POP3 accounts"): MailAccount.objects.filter(owner__in=users).count(),
            _("messages"): MailAccount.objects.filter(owner__in=users).aggregate(n=Count("messages"))["n"],
        }
        return [str(user) for user in users], model_count, set(), []

    def delete_model(self, request, obj) -> None:
        user_actions.delete_user(obj, request=request)

    def delete_queryset(self, request, queryset) -> None:
        for user in self._within_reach(request, queryset):
            if user.pk == request.user.pk:
                self.message_user(request, _("You cannot delete yourself here."), messages.ERROR)
                continue
            user_actions.delete_user(user, request=request)


@admin.register(AuditEvent)
class AuditEventAdmin(libadmin.Record, admin.ModelAdmin):
    list_display = ("time", "actor_name", "action", "target", "ip")
    list_filter = ("action", "time")
    search_fields = ("actor_name", "target", "ip")
    date_hierarchy = "time"
    readonly_fields = ("time", "actor", "actor_name", "action", "target", "ip", "details")


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Read-only list; invitations are made on the operators' page (its link is shown only once)."""

    list_display = ("__str__", "created_by", "created_at", "expires_at", "used_at", "used_by")
    list_filter = ("used_at", "expires_at")
    readonly_fields = ("email", "created_by", "created_at", "expires_at", "used_at", "used_by")

    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_revoke_permission(self, request) -> bool:
        return request.user.has_perm(operators.MANAGE_INVITATIONS)

    @admin.action(description=_("Revoke the selected invitations"), permissions=["revoke"])
    def revoke(self, request, queryset) -> None:
        revoked = 0
        for invitation in queryset:
            if signup.revoke_invitation(invitation):
                audit.record(request, audit.INVITATION_REVOKED, f"invitation:{invitation.pk}")
                revoked += 1
        self.message_user(request, _("Revoked %(n)d invitations.") % {"n": revoked})
