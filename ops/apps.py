from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ops"
    label = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        post_migrate.connect(ensure_operators_group, sender=self, dispatch_uid="ops.ensure_operators_group")


def ensure_operators_group(sender, using: str, **kwargs) -> None:
    """The "Operators" group again after ``migrate`` or ``flush`` (which empties every table and then
    adds the permissions back, as this does the group): migration 0003 made it once."""
    from django.contrib.auth.models import Group, Permission

    from users import operators

    if Group.objects.using(using).filter(name=operators.GROUP).exists():
        return  # as an administrator left it
    codenames = [name.split(".", 1)[1] for name in operators.PERMISSIONS]
    permissions = Permission.objects.using(using).filter(content_type__app_label="ops", codename__in=codenames)
    if permissions.count() == len(codenames):  # else ops is migrated back before its permissions
        Group.objects.using(using).create(name=operators.GROUP).permissions.add(*permissions)
