# The call table is partitioned by month (PostgreSQL), so an import can load a
# month's first file into a table of its own, build the indexes once in
# sorted passes and attach it, instead of updating four indexes per row
# (docs/cdr-import.md, "How the import works"). PostgreSQL enforces a unique
# index on a partitioned table only together with the partition key, so the
# unique call id moves to a narrow table, billing_callkey, kept by triggers on
# the call table: an insert of a stored call id fails as the unique
# constraint did. The primary key becomes (id, period): ids stay unique (one
# identity sequence), the key only has to name the partition column.
#
# Partitions: billing_callrecord_pYYYY_MM per month (billing.partitions) and
# a default partition for rows written before their month's partition exists
# (fixtures, the embedded demo); billing.partitions moves them out when it
# creates the month.
#
# SQLite (the embedded default) keeps one table; the same triggers (row
# level) keep billing_callkey. Note: Django rebuilds a SQLite table to alter
# it, which drops its triggers: a later migration that alters the call table
# on SQLite must create them again (SQLITE_TRIGGERS).

import datetime as dt

from django.db import migrations, models

TABLE = "billing_callrecord"
OLD = "billing_callrecord_unpartitioned"
INDEXES = {
    "call_sub_period_order_idx": "(subscription_id, period, start_time, call_id)",
    "call_company_period_idx": "(company_id, period)",
}
INVOICE_INDEX = "call_invoice_idx"
INVOICE_FK = "billing_callrecord_invoice_id_6b4c2c3b_fk_billing_invoice_id"

PG_TRIGGERS = f"""
CREATE FUNCTION billing_callkey_insert() RETURNS trigger AS $$
BEGIN
    INSERT INTO billing_callkey (call_id, period)
        SELECT call_id, period FROM new_calls;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER billing_callkey_insert AFTER INSERT ON {TABLE}
    REFERENCING NEW TABLE AS new_calls
    FOR EACH STATEMENT EXECUTE FUNCTION billing_callkey_insert();

CREATE FUNCTION billing_callkey_delete() RETURNS trigger AS $$
BEGIN
    DELETE FROM billing_callkey k USING old_calls o WHERE k.call_id = o.call_id;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER billing_callkey_delete AFTER DELETE ON {TABLE}
    REFERENCING OLD TABLE AS old_calls
    FOR EACH STATEMENT EXECUTE FUNCTION billing_callkey_delete();

CREATE FUNCTION billing_callkey_update() RETURNS trigger AS $$
BEGIN
    IF NEW.call_id IS DISTINCT FROM OLD.call_id
       OR NEW.period IS DISTINCT FROM OLD.period THEN
        UPDATE billing_callkey SET call_id = NEW.call_id, period = NEW.period
            WHERE call_id = OLD.call_id;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER billing_callkey_update AFTER UPDATE OF call_id, period ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION billing_callkey_update();

CREATE FUNCTION billing_callkey_truncate() RETURNS trigger AS $$
BEGIN
    DELETE FROM billing_callkey;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER billing_callkey_truncate AFTER TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION billing_callkey_truncate();
"""

PG_DROP_TRIGGERS = """
DROP FUNCTION IF EXISTS billing_callkey_insert() CASCADE;
DROP FUNCTION IF EXISTS billing_callkey_delete() CASCADE;
DROP FUNCTION IF EXISTS billing_callkey_update() CASCADE;
DROP FUNCTION IF EXISTS billing_callkey_truncate() CASCADE;
"""

SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER billing_callkey_insert AFTER INSERT ON {TABLE}
    BEGIN INSERT INTO billing_callkey (call_id, period)
        VALUES (NEW.call_id, NEW.period); END""",
    f"""CREATE TRIGGER billing_callkey_delete AFTER DELETE ON {TABLE}
    BEGIN DELETE FROM billing_callkey WHERE call_id = OLD.call_id; END""",
    f"""CREATE TRIGGER billing_callkey_update AFTER UPDATE OF call_id, period
    ON {TABLE} BEGIN UPDATE billing_callkey SET call_id = NEW.call_id,
        period = NEW.period WHERE call_id = OLD.call_id; END""",
]


def _month_bounds(period: dt.date) -> tuple[dt.date, dt.date]:
    first = period.replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    return first, following


def _unique_call_id(apps):
    model = apps.get_model("billing", "CallRecord")
    return model, next(
        c for c in model._meta.constraints if c.name == "call_unique_call_id"
    )


def _set_aside(cur, *, partition_by: str = "") -> None:
    """Rename the call table and its indexes away; create an empty twin."""
    cur.execute(f"ALTER TABLE {TABLE} RENAME TO {OLD}")
    cur.execute(f"ALTER INDEX {TABLE}_pkey RENAME TO {OLD}_pkey")
    for name in (*INDEXES, INVOICE_INDEX):
        cur.execute(f"ALTER INDEX {name} RENAME TO {name}_old")
    cur.execute(
        f"CREATE TABLE {TABLE} (LIKE {OLD} INCLUDING DEFAULTS"
        f" INCLUDING CONSTRAINTS INCLUDING IDENTITY) {partition_by}"
    )


def _add_keys(cur, *, primary_key: str) -> None:
    cur.execute(f"ALTER TABLE {TABLE} ADD PRIMARY KEY {primary_key}")
    for name, columns in INDEXES.items():
        cur.execute(f"CREATE INDEX {name} ON {TABLE} {columns}")
    cur.execute(
        f"CREATE INDEX {INVOICE_INDEX} ON {TABLE} (invoice_id)"
        " WHERE invoice_id IS NOT NULL"
    )
    cur.execute(
        f"ALTER TABLE {TABLE} ADD CONSTRAINT {INVOICE_FK} FOREIGN KEY"
        " (invoice_id) REFERENCES billing_invoice (id)"
        " DEFERRABLE INITIALLY DEFERRED"
    )


def _move_rows_back(cur) -> None:
    """Copy the set-aside rows into the new table, then drop the old one."""
    cur.execute(f"INSERT INTO {TABLE} SELECT * FROM {OLD}")  # noqa: S608
    cur.execute(
        f"SELECT setval(pg_get_serial_sequence('{TABLE}', 'id'),"  # noqa: S608
        f" coalesce((SELECT max(id) FROM {TABLE}), 0) + 1, false)"
    )
    cur.execute(f"DROP TABLE {OLD} CASCADE")


def partition(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        model, constraint = _unique_call_id(apps)
        schema_editor.remove_constraint(model, constraint)
        with connection.cursor() as cur:
            cur.execute(
                f"INSERT INTO billing_callkey (call_id, period)"  # noqa: S608
                f" SELECT call_id, period FROM {TABLE}"
            )
            for sql in SQLITE_TRIGGERS:
                cur.execute(sql)
        return
    with connection.cursor() as cur:
        _set_aside(cur, partition_by="PARTITION BY RANGE (period)")
        _add_keys(cur, primary_key="(id, period)")
        cur.execute(f"CREATE TABLE {TABLE}_default PARTITION OF {TABLE} DEFAULT")
        cur.execute(f"SELECT DISTINCT period FROM {OLD}")  # noqa: S608
        for (period,) in cur.fetchall():
            lo, hi = _month_bounds(period)
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE}_p{lo:%Y_%m}"
                f" PARTITION OF {TABLE} FOR VALUES FROM (%s) TO (%s)",
                [lo, hi],
            )
        cur.execute(
            f"INSERT INTO billing_callkey (call_id, period)"  # noqa: S608
            f" SELECT call_id, period FROM {OLD}"
        )
        _move_rows_back(cur)
        cur.execute(PG_TRIGGERS)


def unpartition(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        with connection.cursor() as cur:
            for name in ("insert", "delete", "update"):
                cur.execute(f"DROP TRIGGER IF EXISTS billing_callkey_{name}")
        model, constraint = _unique_call_id(apps)
        schema_editor.add_constraint(model, constraint)
        return
    with connection.cursor() as cur:
        cur.execute(PG_DROP_TRIGGERS)
        _set_aside(cur)
        _move_rows_back(cur)
        _add_keys(cur, primary_key="(id)")
        cur.execute(
            f"ALTER TABLE {TABLE} ADD CONSTRAINT call_unique_call_id UNIQUE (call_id)"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0008_call_subscription_key_by_trigger"),
    ]

    operations = [
        migrations.CreateModel(
            name="CallKey",
            fields=[
                (
                    "call_id",
                    models.CharField(
                        max_length=64,
                        primary_key=True,
                        serialize=False,
                        verbose_name="call id",
                    ),
                ),
                ("period", models.DateField(verbose_name="billing month")),
            ],
            options={
                "verbose_name": "call id",
                "verbose_name_plural": "call ids",
            },
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint(
                    model_name="callrecord",
                    name="call_unique_call_id",
                ),
            ],
            database_operations=[migrations.RunPython(partition, unpartition)],
        ),
    ]
