"""Positional digit tokens for ``*`` patterns, and carrier-first indexes
(PostgreSQL only).

``plans_digit_tokens(number)`` lists "digit(s) at position" integers for the
7 digits after 400 (see plans.search.digit_tokens, which must agree); a GIN
index on it finds ``400*3*2*75`` by intersecting a few posting lists, where
trigrams would scan most of the table. SQLite gets nothing: there the LIKE
alone answers, correctly, only slower.

Numbers are imported block by block, so a carrier's numbers sit together in
number order; without ``(carrier, …)`` indexes a carrier filter walks past
every other carrier's stock first.

"Ends with" is a whole-number pattern too (``******8888``), answered by the
tokens, so the reversed-number index of 0003 goes.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION plans_digit_tokens(n text) RETURNS integer[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT ARRAY(
        SELECT 100 + i * 10 + substr(n, i, 1)::int FROM generate_series(4, 10) AS i
        UNION ALL
        SELECT 1000 + i * 100 + substr(n, i, 2)::int FROM generate_series(4, 9) AS i
        UNION ALL
        SELECT 10000 + i * 1000 + substr(n, i, 3)::int FROM generate_series(4, 8) AS i
    )
$$
"""
INDEXES = [
    (
        "phonenumber_stock_tokens_idx",
        "CREATE INDEX IF NOT EXISTS phonenumber_stock_tokens_idx "
        "ON plans_phonenumber USING gin (plans_digit_tokens(number)) "
        "WHERE status = 'available'",
    ),
    (
        "phonenumber_stock_carrier_idx",
        "CREATE INDEX IF NOT EXISTS phonenumber_stock_carrier_idx "
        "ON plans_phonenumber (carrier, number) WHERE status = 'available'",
    ),
    (
        "phonenumber_stock_carrier_fee_idx",
        "CREATE INDEX IF NOT EXISTS phonenumber_stock_carrier_fee_idx "
        "ON plans_phonenumber (carrier, selection_fee, number) "
        "WHERE status = 'available'",
    ),
    (
        "phonenumber_stock_carrier_fee_desc_idx",
        "CREATE INDEX IF NOT EXISTS phonenumber_stock_carrier_fee_desc_idx "
        "ON plans_phonenumber (carrier, selection_fee DESC, number) "
        "WHERE status = 'available'",
    ),
]


DROPPED = {
    "phonenumber_stock_rev_idx": (
        "CREATE INDEX IF NOT EXISTS phonenumber_stock_rev_idx "
        "ON plans_phonenumber (reverse(number) text_pattern_ops) "
        "WHERE status = 'available'"
    ),
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION)
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
    schema_editor.execute("DROP FUNCTION IF EXISTS plans_digit_tokens(text)")


class Migration(migrations.Migration):
    dependencies = [
        ("plans", "0003_number_search_pg_indexes"),
    ]

    operations = [
        migrations.RunPython(create, drop, elidable=False),
    ]
