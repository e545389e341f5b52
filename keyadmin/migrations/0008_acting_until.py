"""The end of the act-for time box on every row made while acting (issue 12, item 4).

SQLite adds the column by rebuilding the table, which drops its triggers: the append-only
trigger of 0002 is made again afterwards, as in 0006 and 0007.
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
    dependencies = (("keyadmin", "0007_key_lifecycle"),)

    operations = (
        migrations.AddField(
            model_name="auditevent",
            name="acting_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(_append_only_again, migrations.RunPython.noop),
    )
