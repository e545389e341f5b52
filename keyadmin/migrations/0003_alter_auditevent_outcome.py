"""The outcome labels became translatable (the audit page shows them). No SQL: labels only."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = (("keyadmin", "0002_audit_append_only"),)

    operations = (
        migrations.AlterField(
            model_name="auditevent",
            name="outcome",
            field=models.CharField(
                choices=[("ok", "OK"), ("failed", "Failed"), ("denied", "Denied")], max_length=8
            ),
        ),
    )
