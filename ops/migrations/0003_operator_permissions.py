# The operators' permissions and the "Operators" group that holds them.

from django.db import migrations, models

# As of this migration (users.operators.PERMISSIONS is the living list).
PERMISSIONS = [
    ("view_dashboard", "Can view the operators' dashboard (every account's health, hosts and errors)"),
    ("act_on_accounts", "Can sync now, pause, resume and retry quarantined mail of any account"),
    ("disable_users", "Can disable and re-enable users"),
    ("manage_invitations", "Can create and revoke invitations"),
    ("view_metrics", "Can read the Prometheus metrics in the browser"),
]


def create_operators_group(apps, schema_editor):
    """Idempotent: the permissions are made here (Django adds them only after every migration ran)."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    content_type, _ = ContentType.objects.get_or_create(app_label="ops", model="operator")
    permissions = [
        Permission.objects.get_or_create(content_type=content_type, codename=codename, defaults={"name": name})[0]
        for codename, name in PERMISSIONS
    ]
    group, _ = Group.objects.get_or_create(name="Operators")
    group.permissions.add(*permissions)


class Migration(migrations.Migration):

    dependencies = [
        ('auth', '0012_alter_user_first_name_max_length'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('ops', '0002_metric_total'),
    ]

    operations = [
        migrations.CreateModel(
            name='Operator',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
            ],
            options={
                'permissions': PERMISSIONS,
                'managed': False,
                'default_permissions': (),
            },
        ),
        # Leaving the group on the way back keeps whatever an administrator changed in it.
        migrations.RunPython(create_operators_group, migrations.RunPython.noop),
    ]
