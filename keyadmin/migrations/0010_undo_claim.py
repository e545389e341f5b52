"""One undo of a lock-down at a time: a small table whose primary key is the claim. A new table;
the audit table, and SQLite's append-only trigger, are left as they are."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = (("keyadmin", "0009_audit_key_index"),)

    operations = (
        migrations.CreateModel(
            name="UndoClaim",
            fields=[
                (
                    "lockdown_batch_id",
                    models.CharField(max_length=36, primary_key=True, serialize=False),
                ),
                ("undo_batch_id", models.CharField(max_length=36)),
                ("staff_name", models.CharField(blank=True, max_length=200)),
                ("claimed_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("expires_at", models.DateTimeField()),
            ],
        ),
    )
