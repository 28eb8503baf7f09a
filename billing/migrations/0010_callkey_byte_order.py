# billing_callkey.call_id compares bytes (COLLATE "C"), on PostgreSQL only.
#
# The call-key table exists for one unique index, which every imported call
# meets once (docs/cdr-import.md). Under the database's default collation
# each comparison goes through the C library's strcoll and sorts cannot use
# abbreviated keys; in byte order a million-id sorted insert takes 2.8 s
# instead of 4.0 s on the benchmark machine. Byte order of UTF-8 is code-point
# order, the order the rating rules use for call ids (billing.rating). The
# equality of ids is the same in both: both collations are deterministic.
#
# Django also gave the primary key a second index, varchar_pattern_ops, for
# LIKE queries, which nothing runs on this table: it is dropped, so the
# insert maintains one index.
#
# Comparisons between this column and a call id of another table must name
# the collation (PostgreSQL refuses to compare two different implicit ones):
# the triggers of migration 0009 are recreated with COLLATE "C".
#
# SQLite (the embedded default) compares bytes already: nothing to do there.
# The model does not carry the collation (it would be invalid on SQLite); a
# later AlterField of call_id on PostgreSQL must keep it.

from django.db import migrations

LIKE_INDEX = "billing_callkey_call_id_697a7709_like"

TRIGGERS = {
    "old": """
CREATE OR REPLACE FUNCTION billing_callkey_delete() RETURNS trigger AS $$
BEGIN
    DELETE FROM billing_callkey k USING old_calls o WHERE k.call_id = o.call_id;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE OR REPLACE FUNCTION billing_callkey_update() RETURNS trigger AS $$
BEGIN
    IF NEW.call_id IS DISTINCT FROM OLD.call_id
       OR NEW.period IS DISTINCT FROM OLD.period THEN
        UPDATE billing_callkey SET call_id = NEW.call_id, period = NEW.period
            WHERE call_id = OLD.call_id;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
""",
    "new": """
CREATE OR REPLACE FUNCTION billing_callkey_delete() RETURNS trigger AS $$
BEGIN
    DELETE FROM billing_callkey k USING old_calls o
        WHERE k.call_id = o.call_id COLLATE "C";
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE OR REPLACE FUNCTION billing_callkey_update() RETURNS trigger AS $$
BEGIN
    IF NEW.call_id IS DISTINCT FROM OLD.call_id
       OR NEW.period IS DISTINCT FROM OLD.period THEN
        UPDATE billing_callkey SET call_id = NEW.call_id, period = NEW.period
            WHERE call_id = OLD.call_id COLLATE "C";
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
""",
}


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cur:
        cur.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'billing_callkey'"
            " AND indexdef LIKE '%%varchar_pattern_ops%%'"
        )
        for (name,) in cur.fetchall():
            schema_editor.execute(f'DROP INDEX "{name}"')
    schema_editor.execute(
        'ALTER TABLE billing_callkey ALTER COLUMN call_id TYPE varchar(64) COLLATE "C"'
    )
    schema_editor.execute(TRIGGERS["new"])


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(TRIGGERS["old"])
    schema_editor.execute(
        "ALTER TABLE billing_callkey ALTER COLUMN call_id TYPE varchar(64)"
        ' COLLATE "default"'
    )
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {LIKE_INDEX}"
        " ON billing_callkey (call_id varchar_pattern_ops)"
    )


class Migration(migrations.Migration):
    dependencies = [("billing", "0009_call_table_partitioned_by_month")]

    operations = [migrations.RunPython(forward, backward)]
