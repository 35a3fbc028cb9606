"""Core statements run straight on the pool's DBAPI connection, for the writes at request rate.

Why: under gunicorn, SQLAlchemy's per-call execution layer (execution context, parameter
processing, Result objects, events) cost a checklist request more CPU than its five statements
themselves: about 0.5 of its 2.1 ms (bench/endpoints.py; the issue asks for a quarter of a trivial
route's throughput). The statements are still written with Core and compiled by the engine's
dialect, once each; only that per-call layer is skipped. A transaction begins as db.py's do (BEGIN
IMMEDIATE under the write lock on SQLite), and a DBAPI error comes out as SQLAlchemy's DBAPIError,
so callers handle a failure as they would with Core.

Column defaults are SQLAlchemy's to apply, and this path skips them: an INSERT's parameters name
every column that has one (or it is refused), and every other value it stores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import Engine, Insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable

from leadform.write_lock import leaves_connection_unusable


class Prepared(NamedTuple):
    sql: str
    positional: bool
    names: tuple[str, ...]  # the parameters in the SQL's order
    pick: Callable[[Mapping[str, Any]], Any]  # their values from a mapping, as a tuple (one: the value)
    literals: dict[str, Any]  # values written into the statement, where the call gives none
    # Where a value needs the dialect's converter (JSON to text, DateTime to SQLite's
    # "YYYY-MM-DD HH:MM:SS.ffffff"): its position and the converter.
    converters: tuple[tuple[int, Callable[[Any], Any]], ...]


_PREPARED: dict[tuple[int, int, tuple[str, ...]], tuple[Executable, Dialect, Prepared]] = {}


def prepare(statement: Executable, dialect: Dialect, keys: tuple[str, ...] = ()) -> Prepared:
    """`statement` compiled for `dialect`, once; an INSERT for the columns named by `keys`."""
    cache_key = (id(statement), id(dialect), keys)
    cached = _PREPARED.get(cache_key)
    if cached is not None:
        return cached[2]
    if isinstance(statement, Insert):
        missing = _defaulted(statement.table) - set(keys)
        if missing:
            raise ValueError(f"{statement.table.name} row without {sorted(missing)}")
    compiled = statement.compile(dialect=dialect, column_keys=list(keys) if isinstance(statement, Insert) else None)
    by_name = {name: bind for bind, name in compiled.bind_names.items()}
    names = tuple(compiled.positiontup if compiled.positional else by_name)
    literals, converters = {}, []
    for position, name in enumerate(names):
        bind = by_name[name]
        if bind.expanding or bind.literal_execute or bind.callable is not None:
            raise ValueError(f"direct_sql takes plain parameters only, not {name!r} (an IN list, a literal "
                             "rendered at execution or a value computed per call)")
        if not bind.required:
            literals[name] = bind.value
        convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if convert is not None:
            converters.append((position, convert))
    prepared = Prepared(str(compiled), compiled.positional, names, itemgetter(*names) if names else _none,
                        literals, tuple(converters))
    # The statement and the dialect stay alive with their entry, so their ids are never reused.
    _PREPARED[cache_key] = (statement, dialect, prepared)
    return prepared


def _none(_params: Mapping[str, Any]) -> tuple:
    return ()


def _defaulted(table: Any) -> set[str]:
    """The columns an INSERT here must name: those SQLAlchemy would fill from a default, and those
    that cannot be empty (but a primary key the database numbers itself)."""
    return {c.key for c in table.c
            if c.default is not None or (not c.nullable and not c.primary_key and c.server_default is None)}


def bind(statement: Executable, dialect: Dialect, params: Mapping[str, Any]) -> tuple[str, tuple | dict]:
    """The SQL and the DBAPI parameters for `params`, converted as SQLAlchemy converts them."""
    prepared = prepare(statement, dialect, tuple(sorted(params)) if isinstance(statement, Insert) else ())
    if type(params) is not dict:  # a mapping with defaults (__missing__) must not fill in a missing value
        params = dict(params)
    try:
        picked = prepared.pick({**prepared.literals, **params} if prepared.literals else params)
    except KeyError as exc:
        raise KeyError(f"no value for the parameter {exc.args[0]!r}") from None
    values = list(picked) if len(prepared.names) != 1 else [picked]
    for position, convert in prepared.converters:
        values[position] = convert(values[position])
    if prepared.positional:
        return prepared.sql, tuple(values)
    return prepared.sql, dict(zip(prepared.names, values, strict=True))


class Rows:
    """What a statement returned: only the two readings the request paths need, as the DBAPI gives
    them (no result conversion: on SQLite a Boolean comes back as 0 or 1, a DateTime as text)."""

    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor

    def first(self) -> tuple | None:
        return self.cursor.fetchone()

    def scalar(self) -> Any:
        row = self.cursor.fetchone()
        return None if row is None else row[0]


class Transaction:
    """An open transaction on a DBAPI connection; `execute` takes a Core statement and its parameters
    as Connection.execute does, and returns the rows for `first()` or `scalar()`."""

    def __init__(self, cursor: Any, dialect: Dialect) -> None:
        self.cursor = cursor
        self.dialect = dialect

    def execute(self, statement: Executable, params: Mapping[str, Any] | None = None) -> Rows:
        self.cursor.execute(*bind(statement, self.dialect, params or {}))
        return Rows(self.cursor)


@contextmanager
def pooled_connection(engine: Engine) -> Iterator[Any]:
    """The pool's connection (its DBAPI connection is `.dbapi_connection`), given back when the block
    ends. A DBAPI error comes out as SQLAlchemy's DBAPIError, as Core raises it, and a connection that
    a read-only file, a full disk or a lost server left unusable is dropped from the pool."""
    dialect = engine.dialect
    dbapi_error = dialect.loaded_dbapi.Error
    try:
        pooled = engine.raw_connection()
    except dbapi_error as exc:  # cannot open the file (folder gone, out of descriptors)
        raise DBAPIError.instance(None, None, exc, dbapi_error, dialect=dialect) from exc
    try:
        yield pooled
    except dbapi_error as exc:
        broken = leaves_connection_unusable(exc) or dialect.is_disconnect(exc, pooled.dbapi_connection, None)
        if broken:
            pooled.invalidate(exc)
        raise DBAPIError.instance(None, None, exc, dbapi_error, connection_invalidated=broken,
                                  dialect=dialect) from exc
    finally:
        pooled.close()


@contextmanager
def transaction(engine: Engine) -> Iterator[Transaction]:
    """One transaction, committed when the block ends without an exception. Otherwise the pool rolls
    it back as it takes the connection back (its reset on return), which also frees the write lock."""
    with pooled_connection(engine) as pooled:
        connection = pooled.dbapi_connection
        _begin(connection, engine.dialect)
        yield Transaction(connection.cursor(), engine.dialect)
        connection.commit()


def _begin(connection: Any, dialect: Dialect) -> None:
    """As db.py's engines begin: on SQLite BEGIN IMMEDIATE, under the write lock where there is one;
    other databases' drivers open the transaction with the first statement."""
    if hasattr(connection, "begin_immediate"):
        connection.begin_immediate()
    elif dialect.name == "sqlite":
        connection.execute("BEGIN IMMEDIATE")
