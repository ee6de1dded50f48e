"""Named audit queries: the ``.sql`` files in ``analytics/queries/``, run on the catalog."""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from importlib import resources
from typing import Any

import duckdb

from analytics.errors import (
    QueryFailedError,
    QueryRefusedError,
    QueryTimeoutError,
    UnknownQueryError,
)

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Leading comments and EXPLAIN's own words, before the statement it explains.
_COMMENTS = re.compile(r"^(\s+|--[^\n]*(\n|$)|/\*.*?\*/)*", re.DOTALL)
_EXPLAIN = re.compile(r"^EXPLAIN(\s+ANALY[SZ]E)?(\s*\([^)]*\))?\s*", re.IGNORECASE)


@dataclass(frozen=True)
class NamedQuery:
    name: str
    description: str
    sql: str


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def named_queries() -> dict[str, NamedQuery]:
    """Every named query, by name; the description is the file's first comment line."""
    folder = resources.files("analytics").joinpath("queries")
    found = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        sql = entry.read_text()
        first = sql.splitlines()[0] if sql else ""
        description = first[2:].strip() if first.startswith("--") else ""
        name = entry.name[: -len(".sql")]
        found[name] = NamedQuery(name, description, sql)
    return found


def resolve(name_or_sql: str) -> tuple[str | None, str]:
    """(name, SQL) for a query name, (None, SQL) for a SQL text; a bare unknown name is an
    error."""
    queries = named_queries()
    if name_or_sql in queries:
        return name_or_sql, queries[name_or_sql].sql
    if _NAME.match(name_or_sql.strip()):
        raise UnknownQueryError(name_or_sql, sorted(queries))
    return None, name_or_sql


def run(con: Any, name_or_sql: str, timeout_s: float | None = None) -> QueryResult:
    """Run a named query or read-only SQL; past ``timeout_s`` seconds DuckDB is interrupted
    and QueryTimeoutError raised."""
    label, sql = resolve(name_or_sql)
    timer = threading.Timer(timeout_s, con.interrupt) if timeout_s is not None else None
    try:
        if label is None:
            check_ad_hoc(con, sql)
        if timer is not None:
            timer.start()
        cursor = con.execute(sql)
        columns = [d[0] for d in cursor.description or []]
        rows = cursor.fetchall()
    except duckdb.InterruptException as error:
        if timeout_s is None:
            raise
        raise QueryTimeoutError(label, timeout_s) from error
    except duckdb.Error as error:
        raise QueryFailedError(label, str(error).splitlines()[0]) from error
    finally:
        if timer is not None:
            timer.cancel()
    logger.debug("query %s: %d rows", label or "(SQL)", len(rows))
    return QueryResult(columns, rows)


def check_ad_hoc(con: Any, sql: str) -> None:
    """Refuse ad hoc SQL unless it is one statement that only reads (parsed once).

    The catalog is opened read-only and confined to the dataset's folder, but inside that
    folder DuckDB could still write (``COPY … TO``, ``EXPORT DATABASE``), and ``LOAD``,
    ``ATTACH`` or a temporary table would change the session: only queries are let through
    (QueryRefusedError, checked first so that a write is named as such). Of several
    statements DuckDB would run each and return the last one's rows only, and an empty or
    comment-only text has no result at all (QueryFailedError).
    """
    statements = con.extract_statements(sql)
    _refuse_unless_read_only(con, statements)
    if not statements:
        raise QueryFailedError(
            None,
            "it holds no SQL statement (only blanks or comments); give a query name "
            "(perstack-audit list) or one SELECT",
            refused=True,
        )
    if len(statements) > 1:
        raise QueryFailedError(
            None,
            f"it holds {len(statements)} statements; give one at a time (only the last "
            "one's rows would be shown)",
            refused=True,
        )


def _refuse_unless_read_only(con: Any, statements: list[Any]) -> None:
    for statement in statements:
        text = _COMMENTS.sub("", statement.query)
        if statement.type == duckdb.StatementType.EXPLAIN:
            explained = _EXPLAIN.sub("", text, count=1)
            if explained == text or not explained.strip():
                raise QueryRefusedError(_first_word(text))
            _refuse_unless_read_only(con, con.extract_statements(explained))
        elif statement.type != duckdb.StatementType.SELECT:
            word = _first_word(text)
            # WITH … INSERT is named by what it does, not by its WITH.
            raise QueryRefusedError(statement.type.name if word == "WITH" else word)


def _first_word(text: str) -> str:
    words = text.split(None, 1)
    return words[0].rstrip(";").upper() if words else "an empty statement"
