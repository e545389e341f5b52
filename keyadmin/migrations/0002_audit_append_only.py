"""The database itself refuses to change an audit event (defence in depth behind the model).

Deleting stays possible: `manage.py prune_audit` removes events past the retention period.
"""

from django.db import migrations

SQLITE_UP = """
CREATE TRIGGER keyadmin_auditevent_no_update BEFORE UPDATE ON keyadmin_auditevent
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
"""
SQLITE_DOWN = "DROP TRIGGER IF EXISTS keyadmin_auditevent_no_update;"

POSTGRES_UP = """
CREATE FUNCTION keyadmin_auditevent_no_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'audit events are append-only'; END; $$;
CREATE TRIGGER keyadmin_auditevent_no_update BEFORE UPDATE ON keyadmin_auditevent
FOR EACH ROW EXECUTE FUNCTION keyadmin_auditevent_no_update();
"""
POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS keyadmin_auditevent_no_update ON keyadmin_auditevent;
DROP FUNCTION IF EXISTS keyadmin_auditevent_no_update();
"""


def _run(statements: dict[str, str]):
    def run(apps, schema_editor):
        sql = statements.get(schema_editor.connection.vendor)
        if sql:
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = (("keyadmin", "0001_initial"),)

    operations = (
        migrations.RunPython(
            _run({"sqlite": SQLITE_UP, "postgresql": POSTGRES_UP}),
            _run({"sqlite": SQLITE_DOWN, "postgresql": POSTGRES_DOWN}),
        ),
    )
