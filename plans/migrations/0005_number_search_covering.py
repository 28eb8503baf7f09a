"""Covering indexes for walking the stock in number order (PostgreSQL only).

A search that matches a few percent of the stock ("ends with 88", "no 4") is
answered by walking numbers in order until a page is full; the count walks
on to 201 matches. With the columns the search filters and shows INCLUDEd,
the walk is an index-only scan and never touches the table. Replaces the
plain ``(carrier, number)`` index of 0004.
"""

from django.db import migrations

COLUMNS = "id, carrier, grade_id, selection_fee, has_four"
INDEXES = [
    (
        "phonenumber_stock_number_cover_idx",
        "CREATE INDEX IF NOT EXISTS phonenumber_stock_number_cover_idx "
        f"ON plans_phonenumber (number) INCLUDE ({COLUMNS}) "
        "WHERE status = 'available'",
    ),
    (
        "phonenumber_stock_carrier_cover_idx",
        "CREATE INDEX IF NOT EXISTS phonenumber_stock_carrier_cover_idx "
        f"ON plans_phonenumber (carrier, number) INCLUDE ({COLUMNS}) "
        "WHERE status = 'available'",
    ),
]
DROPPED = {
    "phonenumber_stock_carrier_idx": (
        "CREATE INDEX IF NOT EXISTS phonenumber_stock_carrier_idx "
        "ON plans_phonenumber (carrier, number) WHERE status = 'available'"
    ),
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for _name, sql in INDEXES:
        schema_editor.execute(sql)
    for name in DROPPED:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _sql in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")
    for sql in DROPPED.values():
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [
        ("plans", "0004_number_search_tokens_carrier"),
    ]

    operations = [
        migrations.RunPython(create, drop, elidable=False),
    ]
