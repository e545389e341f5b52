"""Audit actions became a vocabulary (AuditEvent.Action) with translated labels. No SQL."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = (("keyadmin", "0003_alter_auditevent_outcome"),)

    operations = (
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
                ],
                db_index=True,
                max_length=32,
            ),
        ),
    )
