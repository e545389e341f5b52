"""One index for the question every key row asks of the trail: the rows of one key of one user of
one app (who made it, when, for which ticket). CREATE INDEX leaves the table, and SQLite's
append-only trigger, as they are."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = (("keyadmin", "0008_acting_until"),)

    operations = (
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(
                fields=["app_id", "appservices_user_id", "key_id"], name="auditevent_app_user_key"
            ),
        ),
    )
