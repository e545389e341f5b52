"""The reads every signed-in request makes, and the one every row action makes, without the
ORM's per-call query building.

Every request loads its session row and its staff user (with the Staff row). Through the ORM
each costs more in building and compiling the query than in the database (measured: 0.40 ms
and 0.87 ms of CPU against 0.03 ms for the statement on SQLite). Here the statements are written
once from the models' own metadata and read back through the same converters Django applies,
so the answer is what the ORM would give, read from the database on every request as before:
nothing is cached, a deactivated user or an ended session counts at once.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import connections, router, transaction
from django.utils import timezone

from keyadmin.models import AuditEvent, KeyNote, Staff


def _columns(model, table_alias: str, connection) -> list[str]:
    quote = connection.ops.quote_name
    return [f"{quote(table_alias)}.{quote(field.column)}" for field in model._meta.concrete_fields]


def _converters(model, connection) -> list[list]:
    """For each concrete field, what Django applies to the raw value it reads (SQLCompiler)."""
    found = []
    for field in model._meta.concrete_fields:
        column = field.get_col(model._meta.db_table)
        found.append(
            [
                *connection.ops.get_db_converters(column),
                *field.get_db_converters(connection),
            ]
        )
    return found


def _instance(model, alias: str, converters: list[list], values, connection):
    converted = []
    for value, field_converters, field in zip(
        values, converters, model._meta.concrete_fields, strict=True
    ):
        column = field.get_col(model._meta.db_table)
        for converter in field_converters:
            value = converter(value, column, connection)
        converted.append(value)
    names = [field.attname for field in model._meta.concrete_fields]
    return model.from_db(alias, names, converted)


class _StaffUserRead:
    """SELECT user, staff FROM user LEFT JOIN staff WHERE user.id = %s, built per database."""

    def __init__(self) -> None:
        self._built: dict[str, tuple[str, list[list], list[list]]] = {}

    def _build(self, alias: str):
        if alias not in self._built:
            connection = connections[alias]
            user_model = get_user_model()
            quote = connection.ops.quote_name
            user_table, staff_table = user_model._meta.db_table, Staff._meta.db_table
            user_pk = user_model._meta.pk.column
            staff_user = Staff._meta.get_field("user").column
            columns = _columns(user_model, user_table, connection) + _columns(
                Staff, staff_table, connection
            )
            user_id = f"{quote(user_table)}.{quote(user_pk)}"
            # Names from the models' metadata, quoted; the one value is a parameter.
            sql = (
                f"SELECT {', '.join(columns)} FROM {quote(user_table)} "  # noqa: S608  # nosec B608
                f"LEFT OUTER JOIN {quote(staff_table)} "
                f"ON {quote(staff_table)}.{quote(staff_user)} = {user_id} "
                f"WHERE {user_id} = %s"
            )
            self._built[alias] = (
                sql,
                _converters(user_model, connection),
                _converters(Staff, connection),
            )
        return self._built[alias]

    def __call__(self, user_id):
        """The user with `user_id` and its `staff` loaded (None if it has no Staff row), or None."""
        user_model = get_user_model()
        alias = router.db_for_read(user_model)
        sql, user_converters, staff_converters = self._build(alias)
        connection = connections[alias]
        with connection.cursor() as cursor:
            cursor.execute(sql, [user_model._meta.pk.get_db_prep_value(user_id, connection)])
            row = cursor.fetchone()
        if row is None:
            return None
        width = len(user_model._meta.concrete_fields)
        user = _instance(user_model, alias, user_converters, row[:width], connection)
        staff = None
        if row[width] is not None:  # Staff's primary key: NULL when the join found no row
            staff = _instance(Staff, alias, staff_converters, row[width:], connection)
            staff._state.fields_cache["user"] = user
        # What select_related("staff") leaves behind: user.staff answers without a query.
        user._state.fields_cache[Staff._meta.get_field("user").remote_field.cache_name] = staff
        return user


staff_user = _StaffUserRead()


def session_data(session_key: str) -> str | None:
    """The encoded data of the session `session_key` if it exists and has not expired."""
    alias = router.db_for_read(Session)
    connection = connections[alias]
    quote = connection.ops.quote_name
    meta = Session._meta
    sql = (
        f"SELECT {quote(meta.get_field('session_data').column)} "  # noqa: S608  # nosec B608
        f"FROM {quote(meta.db_table)} "
        f"WHERE {quote(meta.get_field('session_key').column)} = %s "
        f"AND {quote(meta.get_field('expire_date').column)} > %s"
    )
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(sql, [session_key, now])
        row = cursor.fetchone()
    return row[0] if row else None


class _KeyNoteRead:
    """One key's note and the audit row that made it, in one statement (a row action renders
    that key's row: its note cell says both). The same rows as `notes.annotate` reads through
    the ORM in two queries: filtered on app, App Services user and key id, the first CREATE or
    ROTATE row that succeeded."""

    def __init__(self) -> None:
        self._built: dict[str, tuple[str, list[list], list]] = {}

    def _build(self, alias: str):
        if alias not in self._built:
            connection = connections[alias]
            quote = connection.ops.quote_name
            note_table, audit = KeyNote._meta.db_table, AuditEvent._meta
            note = {name: quote(KeyNote._meta.get_field(name).column) for name in _NOTE_KEYS}
            made = {
                name: quote(audit.get_field(name).column)
                for name in ("staff_name", "at", "ticket", "action", "outcome", "id", *_NOTE_KEYS)
            }
            on = " AND ".join(f"{quote('n')}.{note[name]} = %s" for name in _NOTE_KEYS)
            where = " AND ".join(f"{made[name]} = %s" for name in _NOTE_KEYS)
            # Names from the models' metadata, quoted; every value is a parameter.
            sql = (
                f"SELECT {', '.join(_columns(KeyNote, 'n', connection))}, "  # noqa: S608  # nosec B608
                f"{quote('p')}.{made['staff_name']}, {quote('p')}.{made['at']}, "
                f"{quote('p')}.{made['ticket']}, {quote('p')}.{made['action']} "
                f"FROM (SELECT 1 AS {quote('one')}) AS {quote('base')} "
                f"LEFT OUTER JOIN {quote(note_table)} AS {quote('n')} ON {on} "
                f"LEFT OUTER JOIN (SELECT {made['staff_name']}, {made['at']}, {made['ticket']}, "
                f"{made['action']} FROM {quote(audit.db_table)} "
                f"WHERE {made['action']} IN (%s, %s) AND {made['outcome']} = %s AND {where} "
                f"ORDER BY {made['at']}, {made['id']} LIMIT 1) AS {quote('p')} ON 1 = 1"
            )
            at = audit.get_field("at")
            at_converters = [
                *connection.ops.get_db_converters(at.get_col(audit.db_table)),
                *at.get_db_converters(connection),
            ]
            self._built[alias] = (sql, _converters(KeyNote, connection), at_converters)
        return self._built[alias]

    def __call__(self, app_id: str, user_id: str, key_id: str, made_by: tuple[str, str], ok: str):
        """(the KeyNote or None, (staff_name, at, ticket, action) or None)."""
        alias = router.db_for_read(KeyNote)
        sql, note_converters, at_converters = self._build(alias)
        connection = connections[alias]
        keys = [app_id, user_id, key_id]
        with connection.cursor() as cursor:
            cursor.execute(sql, [*keys, *made_by, ok, *keys])
            row = cursor.fetchone()
        width = len(KeyNote._meta.concrete_fields)
        note = None
        if row[0] is not None:  # KeyNote's primary key: NULL when the key has no note
            note = _instance(KeyNote, alias, note_converters, row[:width], connection)
        staff, at, ticket, action = row[width:]
        if action is None:
            return note, None
        column = AuditEvent._meta.get_field("at").get_col(AuditEvent._meta.db_table)
        for converter in at_converters:
            at = converter(at, column, connection)
        return note, (staff, at, ticket, action)


_NOTE_KEYS = ("app_id", "appservices_user_id", "key_id")


def user_notes(app_id: str, user_id: str) -> list[KeyNote]:
    """Every note of this App Services user of this app, as `KeyNote` instances: what a list
    answer needs twice (the listed keys' notes, and the notes whose key it lacks), read once, on
    the (app, user, key) unique index."""
    alias = router.db_for_read(KeyNote)
    connection = connections[alias]
    quote = connection.ops.quote_name
    column = {name: quote(KeyNote._meta.get_field(name).column) for name in _NOTE_KEYS}
    # Names from the model's metadata, quoted; every value is a parameter.
    sql = (
        f"SELECT {', '.join(_columns(KeyNote, KeyNote._meta.db_table, connection))} "  # noqa: S608  # nosec B608
        f"FROM {quote(KeyNote._meta.db_table)} "
        f"WHERE {column['app_id']} = %s AND {column['appservices_user_id']} = %s"
    )
    converters = _converters(KeyNote, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, [app_id, user_id])
        rows = cursor.fetchall()
    return [_instance(KeyNote, alias, converters, row, connection) for row in rows]


key_note = _KeyNoteRead()


class _AuditInsert:
    """INSERT one new AuditEvent, without the ORM's per-call query building (which cost more
    than the statement: measured in the commit). The same statement `save(force_insert=True)`
    sends: every concrete field but the auto primary key, each value prepared by the field's own
    `pre_save` and `get_db_prep_save`; the new id read back as the ORM reads it. Only inserts:
    the model's `save` refusing updates, and the database's trigger (SQLite) and rules and
    grants (PostgreSQL) refusing them, stay as they are."""

    def __init__(self) -> None:
        self._built: dict[str, tuple[str, list, bool]] = {}

    def _build(self, alias: str):
        if alias not in self._built:
            connection = connections[alias]
            quote = connection.ops.quote_name
            meta = AuditEvent._meta
            fields = [field for field in meta.concrete_fields if field is not meta.pk]
            returning = connection.features.can_return_columns_from_insert
            # Names from the model's metadata, quoted; every value is a parameter.
            sql = (
                f"INSERT INTO {quote(meta.db_table)} "  # noqa: S608  # nosec B608
                f"({', '.join(quote(field.column) for field in fields)}) "
                f"VALUES ({', '.join(['%s'] * len(fields))})"
            )
            if returning:
                sql += f" RETURNING {quote(meta.db_table)}.{quote(meta.pk.column)}"
            self._built[alias] = (sql, fields, returning)
        return self._built[alias]

    def __call__(self, event: AuditEvent) -> None:
        """Store `event` (new, never saved) and set its id, as `event.save()` would."""
        if not event._state.adding:
            raise ValueError("only a new audit event is inserted")
        alias = router.db_for_write(AuditEvent, instance=event)
        sql, fields, returning = self._build(alias)
        connection = connections[alias]
        values = [
            field.get_db_prep_save(field.pre_save(event, True), connection) for field in fields
        ]
        meta = AuditEvent._meta
        with transaction.mark_for_rollback_on_error(alias), connection.cursor() as cursor:
            cursor.execute(sql, values)
            if returning:
                new_id = cursor.fetchone()[0]
            else:
                new_id = connection.ops.last_insert_id(cursor, meta.db_table, meta.pk.column)
        column = meta.pk.get_col(meta.db_table)
        for converter in [
            *connection.ops.get_db_converters(column),
            *meta.pk.get_db_converters(connection),
        ]:
            new_id = converter(new_id, column, connection)
        event.pk = new_id
        event._state.adding = False
        event._state.db = alias


audit_insert = _AuditInsert()


def standing_disables(app_id: str, user_id: str, key_ids: list[str]) -> list:
    """(key_id, batch_id, at, id) of each disable of a batch (a lock-down's, a bulk action's),
    outcome ok, about one of `key_ids` of this App Services user of this app that is still the
    last change keyadmin made to that key (no later enable, disable or delete with outcome ok):
    what the keys page asks on every list (is there a lock-down left to offer to undo?), most
    often finding nothing. Only the listed keys: a key gone from App Services has nothing to
    re-enable, and the read stays bounded by the 20 keys' own rows (on the (app, user, key)
    index) instead of growing with the user's whole trail (review: 157 ms at 50,000 rows)."""
    if not key_ids:
        return []
    alias = router.db_for_read(AuditEvent)
    connection = connections[alias]
    quote = connection.ops.quote_name
    meta = AuditEvent._meta
    table = quote(meta.db_table)
    names = ("id", "app_id", "appservices_user_id", "key_id", "action", "outcome", "batch_id")
    column = {name: quote(meta.get_field(name).column) for name in (*names, "at")}

    key_actions = (AuditEvent.Action.ENABLE, AuditEvent.Action.DISABLE, AuditEvent.Action.DELETE)
    # Each key's latest change, numbered 1 by a window over the user's rows of the app: one walk
    # of the index and one sort, where a NOT EXISTS per disable walked each key's rows again
    # (measured: 200 ms against a few with 5,000 rows of one user).
    # Names from the model's metadata, quoted; every value is a parameter.
    sql = (
        f"SELECT {column['key_id']}, {column['batch_id']}, {column['at']}, {column['id']} "  # noqa: S608  # nosec B608
        f"FROM (SELECT {column['key_id']}, {column['action']}, {column['batch_id']}, "
        f"{column['at']}, {column['id']}, ROW_NUMBER() OVER (PARTITION BY {column['key_id']} "
        f"ORDER BY {column['at']} DESC, {column['id']} DESC) AS latest "
        f"FROM {table} "
        f"WHERE {column['app_id']} = %s AND {column['appservices_user_id']} = %s "
        f"AND {column['key_id']} IN ({', '.join(['%s'] * len(key_ids))}) "
        f"AND {column['action']} IN ({', '.join(['%s'] * len(key_actions))}) "
        f"AND {column['outcome']} = %s) changes "
        f"WHERE latest = 1 AND {column['action']} = %s AND {column['batch_id']} <> ''"
    )
    params = [app_id, user_id, *key_ids, *(str(action) for action in key_actions)]
    params += [str(AuditEvent.Outcome.OK), str(AuditEvent.Action.DISABLE)]
    at = meta.get_field("at")
    at_column = at.get_col(meta.db_table)
    at_converters = [
        *connection.ops.get_db_converters(at_column),
        *at.get_db_converters(connection),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    found = []
    for key_id, batch_id, made_at, pk in rows:
        for converter in at_converters:
            made_at = converter(made_at, at_column, connection)
        found.append((key_id, batch_id, made_at, pk))
    return found


def made_rows(
    actions: tuple[str, ...], outcome: str, app_id: str, user_id: str, key_ids: list[str]
) -> list:
    """(app_id, key_id, staff_name, at, ticket, action) of the audit rows with one of `actions`
    and `outcome` about these keys of this App Services user of this app, oldest first: the
    list's provenance read, without the ORM's query building, on the (app, user, key) index."""
    alias = router.db_for_read(AuditEvent)
    connection = connections[alias]
    quote = connection.ops.quote_name
    meta = AuditEvent._meta
    names = ("app_id", "key_id", "staff_name", "at", "ticket", "action")
    column = {
        name: quote(meta.get_field(name).column)
        for name in (*names, "id", "outcome", "appservices_user_id")
    }
    # Names from the model's metadata, quoted; every value is a parameter.
    sql = (
        f"SELECT {', '.join(column[name] for name in names)} "  # noqa: S608  # nosec B608
        f"FROM {quote(meta.db_table)} "
        f"WHERE {column['action']} IN ({', '.join(['%s'] * len(actions))}) "
        f"AND {column['outcome']} = %s AND {column['app_id']} = %s "
        f"AND {column['appservices_user_id']} = %s "
        f"AND {column['key_id']} IN ({', '.join(['%s'] * len(key_ids))}) "
        f"ORDER BY {column['at']}, {column['id']}"
    )
    at = meta.get_field("at")
    at_column = at.get_col(meta.db_table)
    at_converters = [
        *connection.ops.get_db_converters(at_column),
        *at.get_db_converters(connection),
    ]
    params = [*(str(action) for action in actions), str(outcome), app_id, user_id, *key_ids]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    found = []
    for app_id, key_id, staff, made_at, ticket, action in rows:
        for converter in at_converters:
            made_at = converter(made_at, at_column, connection)
        found.append((app_id, key_id, staff, made_at, ticket, action))
    return found
