from django.apps import AppConfig
from django.apps import apps as global_apps


class OpsConfig(AppConfig):
    name = "ops"
    label = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        post_migrate.connect(ensure_operators_group, sender=self, dispatch_uid="ops.ensure_operators_group")


def ensure_operators_group(sender, using: str, apps=global_apps, **kwargs) -> None:
    """The "Operators" group again after ``migrate`` or ``flush`` (which empties every table and then
    adds the permissions back, as this does the group): migration 0003 made it once.

    ``apps``: the models as migrated (``migrate`` passes them; ``flush`` does not), as Django's own
    permissions use them; without auth or this app's permissions migrated (``migrate`` of another app
    alone) there is nothing to do.
    """
    from users import operators

    try:
        permission_model = apps.get_model("auth", "Permission")
        for app_label, model_name in (("auth", "Group"), ("ops", "Operator")):
            apps.get_model(app_label, model_name)
    except LookupError:
        return
    codenames = [name.split(".", 1)[1] for name in operators.PERMISSIONS]
    permissions = permission_model.objects.using(using).filter(content_type__app_label="ops", codename__in=codenames)
    if permissions.count() == len(codenames):  # else ops is migrated back before its permissions
        operators.operators_group()  # made if missing; one that is there stays as an administrator left it
