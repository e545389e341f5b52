"""The app, the customer acted for and the ticket on every audit row; the act-for actions.

SQLite adds these columns by rebuilding the table, which drops its triggers: the append-only
trigger of 0002 is made again afterwards (PostgreSQL adds columns in place and keeps it).
"""

from django.db import migrations, models

SQLITE_TRIGGER = """
CREATE TRIGGER IF NOT EXISTS keyadmin_auditevent_no_update BEFORE UPDATE ON keyadmin_auditevent
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
"""


def _append_only_again(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(SQLITE_TRIGGER)


class Migration(migrations.Migration):
    dependencies = (("keyadmin", "0005_throttle"),)

    operations = (
        migrations.AddField(
            model_name="auditevent",
            name="app_id",
            field=models.CharField(blank=True, db_index=True, max_length=64),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="acting_for",
            field=models.CharField(blank=True, db_index=True, max_length=255),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="ticket",
            field=models.CharField(blank=True, db_index=True, max_length=255),
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
                ],
                db_index=True,
                max_length=32,
            ),
        ),
        migrations.RunPython(_append_only_again, migrations.RunPython.noop),
    )
