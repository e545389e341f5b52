"""Key lifecycle: notes per key, one id per multi-key action, what a note edit changed.

SQLite adds columns to the audit table by rebuilding it, which drops its triggers: the
append-only trigger of 0002 is made again afterwards, as in 0006.
"""

import django.utils.timezone
from django.db import migrations, models

SQLITE_TRIGGER = """
CREATE TRIGGER IF NOT EXISTS keyadmin_auditevent_no_update BEFORE UPDATE ON keyadmin_auditevent
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
"""


def _append_only_again(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(SQLITE_TRIGGER)


class Migration(migrations.Migration):
    dependencies = (("keyadmin", "0006_actfor"),)

    operations = (
        migrations.AddField(
            model_name="auditevent",
            name="batch_id",
            field=models.CharField(blank=True, db_index=True, max_length=36),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="changes",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="action",
            field=models.CharField(
                choices=[
                    ("signin", "Staff sign-in"),
                    ("signout", "Staff sign-out"),
                    ("appservices-signin", "App Services sign-in"),
                    ("appservices-signout", "App Services sign-out"),
                    ("create", "Create key"),
                    ("enable", "Enable key"),
                    ("disable", "Disable key"),
                    ("delete", "Delete key"),
                    ("audit-export", "Audit export"),
                    ("denied", "Refused (role)"),
                    ("throttled", "Sign-ins throttled"),
                    ("act-for-start", "Act for a customer: start"),
                    ("act-for-end", "Act for a customer: end"),
                    ("note", "Key note changed"),
                    ("reviewed", "Key reviewed"),
                    ("rotate", "Rotate key"),
                    ("lock-down", "Lock down account"),
                    ("lock-down-undo", "Undo lock-down"),
                    ("bulk", "Bulk action"),
                    ("delete-user", "Delete empty App Services user"),
                ],
                db_index=True,
                max_length=32,
            ),
        ),
        migrations.CreateModel(
            name="KeyNote",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("app_id", models.CharField(max_length=64)),
                ("appservices_user_id", models.CharField(max_length=64)),
                ("key_id", models.CharField(max_length=24)),
                ("purpose", models.CharField(blank=True, max_length=200)),
                ("ticket", models.CharField(blank=True, max_length=255)),
                ("owner", models.CharField(blank=True, max_length=200)),
                ("review_by", models.DateField(blank=True, null=True)),
                ("superseded_by", models.CharField(blank=True, max_length=24)),
                ("supersedes", models.CharField(blank=True, max_length=24)),
                ("missing_since", models.DateTimeField(blank=True, null=True)),
                ("updated_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("app_id", "appservices_user_id", "key_id"),
                        name="keynote_app_user_key",
                    )
                ],
            },
        ),
        migrations.RunPython(_append_only_again, migrations.RunPython.noop),
    )
