"""Errors of the analytics package: one small hierarchy, each with what to do about it."""

from __future__ import annotations

import shlex


class AnalyticsError(Exception):
    """Base of every error the analytics package raises on purpose."""


class DatasetLockedError(AnalyticsError):
    """Another ingest holds the dataset's lock."""

    def __init__(self, lock_path: str) -> None:
        super().__init__(
            f"{lock_path}: another ingest is writing this dataset; wait for it to finish "
            "(or remove the file if no perstack-audit process is running)"
        )
        self.lock_path = lock_path


class DatasetFormatError(AnalyticsError):
    """The dataset's format file is unreadable, or newer than this code."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class CatalogMovedError(AnalyticsError):
    """The dataset was moved or copied, and its catalog cannot be pointed at the new place."""

    def __init__(self, root: str, reason: str) -> None:
        super().__init__(
            f"{root}: the dataset was moved or copied here and its catalog still reads the "
            f"old place; rebuilding it failed ({reason}); run the query once where the "
            "dataset's folder is writable, or copy it to a writable folder"
        )
        self.root = root


class DatasetPathError(AnalyticsError):
    """The dataset path cannot hold a dataset: it is a file, or DuckDB would misread it."""

    def __init__(
        self, path: str, why: str = "the dataset must be a folder, but this is a file"
    ) -> None:
        super().__init__(f"{path}: {why}; pass another --data (or PERSTACK_AUDIT_DATA)")
        self.path = path
        self.why = why


class NoDatasetError(AnalyticsError):
    """A query on a folder that holds no dataset (nothing was ingested into it)."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"there is no dataset at {path}; create it with `perstack-audit --data "
            f"{shlex.quote(path)} ingest PATH...` first, or check --data / "
            "PERSTACK_AUDIT_DATA"
        )
        self.path = path


class UnknownQueryError(AnalyticsError):
    """A query name that is neither a named audit query nor SQL."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(
            f"unknown query {name!r}: use one of {', '.join(known)} or pass SQL "
            "(run `perstack-audit list` to see them)"
        )
        self.name = name
        self.known = known


class QueryFailedError(AnalyticsError):
    """DuckDB refused or failed a query, or it was not run (``refused``)."""

    def __init__(self, query: str | None, reason: str, *, refused: bool = False) -> None:
        """``query``: the named query's name, or None for SQL given on the command line."""
        what = f"query {query!r}" if query is not None else "the SQL"
        super().__init__(f"{what} {'was refused' if refused else 'failed'}: {reason}")
        self.query = query
        self.reason = reason


class QueryTimeoutError(AnalyticsError):
    """A query stopped because it ran past the --timeout it was given."""

    def __init__(self, query: str | None, seconds: float) -> None:
        what = f"query {query!r}" if query is not None else "the SQL"
        super().__init__(
            f"{what} was stopped after {seconds:g} s (--timeout); narrow it (a WHERE on day "
            "or user_name, a LIMIT) or give it more time"
        )
        self.query = query
        self.seconds = seconds


class QueryRefusedError(AnalyticsError):
    """Ad hoc SQL that would change something: only read-only statements are run."""

    def __init__(self, statement: str) -> None:
        super().__init__(
            f"the SQL was refused: {statement} is not allowed; ad hoc SQL is read-only "
            "(SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN); to keep "
            "results, redirect the output (--format csv > FILE)"
        )
        self.statement = statement


class PricesFileError(AnalyticsError):
    """A prices file that cannot be read as the expected CSV or JSON."""

    def __init__(self, path: str, reason: str) -> None:
        shape = (
            "a JSON list of objects with the keys"
            if path.endswith(".json")
            else ("a CSV with the columns")
        )
        super().__init__(
            f"{path}: {reason}; expected {shape} model, input_usd_per_mtok, "
            "output_usd_per_mtok, cached_input_usd_per_mtok (USD per million tokens)"
        )
        self.path = path
        self.reason = reason
