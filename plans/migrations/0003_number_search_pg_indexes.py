"""PostgreSQL indexes for the number search (plans.selectors.number_search).

- a trigram GIN index on ``number`` answers "contains" and ``*`` patterns
  (``400*8*8888`` becomes ``LIKE '400_8_8888'``);
- a btree on ``reverse(number)`` answers "ends with" as a prefix range;
- ``(grade, number)`` and ``(selection_fee DESC, number)`` serve the grade
  filter and the "highest fee first" sort in number order.

All are partial on ``status = 'available'``: only numbers in stock are
searched. SQLite (the embedded default) gets none of them; its searches are
correct, only slower.
"""

from django.db import migrations

INDEXES = [
    (
        "phonenumber_stock_trgm_idx",
        "CREATE INDEX IF NOT EXISTS phonenumber_stock_trgm_idx "
        "ON plans_phonenumber USING gin (number gin_trgm_ops) "
        "WHERE status = 'available'",
    ),
    (
        "phonenumber_stock_rev_idx",
        "CREATE INDEX IF NOT EXISTS phonenumber_stock_rev_idx "
        "ON plans_phonenumber (reverse(number) text_pattern_ops) "
        "WHERE status = 'available'",
    ),
    (
        "phonenumber_stock_grade_idx",
        "CREATE INDEX IF NOT EXISTS phonenumber_stock_grade_idx "
        "ON plans_phonenumber (grade_id, number) WHERE status = 'available'",
    ),
    (
        "phonenumber_stock_fee_desc_idx",
        "CREATE INDEX IF NOT EXISTS phonenumber_stock_fee_desc_idx "
        "ON plans_phonenumber (selection_fee DESC, number) "
        "WHERE status = 'available'",
    ),
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for _name, sql in INDEXES:
        schema_editor.execute(sql)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _sql in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("plans", "0002_number_search_fields"),
    ]

    operations = [
        migrations.RunPython(create, drop, elidable=False),
    ]
