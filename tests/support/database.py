"""The whole database as text, on either engine: to check that something is nowhere in it."""

from __future__ import annotations

import json

from sqlalchemy import Engine, MetaData


def _text(value: object) -> str:
    # JSON as the database keeps it (as SQLite's .dump shows it), everything else as str(): no repr()
    # escaping that could glue a word character onto an address ("\nan@…" would read "\\nan@…").
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else str(value)


def dump(engine: Engine) -> str:
    """Every row of every table (the ones the migrations made, alembic_version too), one line each, as
    `table: value | value | …`, in a stable order, so two dumps of the same data are equal."""
    metadata = MetaData()
    metadata.reflect(engine)
    lines = []
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            lines += sorted(f"{table.name}: " + " | ".join(_text(value) for value in row)
                            for row in connection.execute(table.select()))
    return "\n".join(lines)
