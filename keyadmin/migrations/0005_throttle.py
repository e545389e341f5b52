"""Sign-in throttling: the counters table, and the "throttled" audit action (a label: no SQL)."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = (("keyadmin", "0004_audit_actions"),)

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
                    ("throttled", "Sign-ins throttled"),
                ],
                db_index=True,
                max_length=32,
            ),
        ),
        migrations.CreateModel(
            name="SignInThrottle",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("scope", models.CharField(max_length=24)),
                ("key", models.CharField(max_length=64)),
                ("attempts", models.PositiveIntegerField(default=0)),
                ("window_start", models.DateTimeField(default=django.utils.timezone.now)),
                ("blocked_until", models.DateTimeField(blank=True, null=True)),
                ("blocks", models.PositiveSmallIntegerField(default=0)),
                ("expires_at", models.DateTimeField(db_index=True)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("scope", "key"), name="signinthrottle_scope_key"
                    )
                ],
            },
        ),
    )
