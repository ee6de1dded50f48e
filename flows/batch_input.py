"""The executions of a batch: (user, query) pairs from a parameter or a JSONL/CSV file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from pydantic import BaseModel, ValidationError, model_validator

from flows.errors import BatchInputError
from flows.query import by_reference


class BatchItem(BaseModel):
    """One execution: a user and a query given inline or as a file (for large ones)."""

    user: str
    query: str | None = None
    query_file: Path | None = None

    @model_validator(mode="after")
    def _one_query(self) -> BatchItem:
        if (self.query is None) == (self.query_file is None):
            raise ValueError("give exactly one of query and query_file")
        if self.query is not None and not self.query.strip():
            raise ValueError("the query is empty: write what the Expert should do")
        return self


def read_items(path: Path) -> list[BatchItem]:
    """Items from a ``.jsonl`` file (one object per line) or a ``.csv`` file with a header
    (``user,query`` and optionally ``query_file``). Relative ``query_file`` paths are
    taken from the file's folder."""
    if path.suffix == ".jsonl":
        rows = _jsonl_rows(path)
    elif path.suffix == ".csv":
        # utf-8-sig: spreadsheets save CSV with a byte-order mark before the header.
        with path.open(newline="", encoding="utf-8-sig") as file:
            rows = [
                (n, {k: v for k, v in r.items() if v and v.strip()})
                for n, r in enumerate(csv.DictReader(file), 2)
            ]
    else:
        raise BatchInputError(f"{path}: a batch file must end in .jsonl or .csv")
    items = [_item(path, line, row) for line, row in rows]
    if not items:
        raise BatchInputError(f"{path}: no executions in the file")
    return [_anchored(i, path.parent) for i in items]


def _jsonl_rows(path: Path) -> list[tuple[int, dict[str, object]]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as error:
            raise BatchInputError(f"{path}:{number}: not JSON: {error}") from error
        if not isinstance(row, dict):
            raise BatchInputError(f"{path}:{number}: expected an object, got {row!r:.60}")
        rows.append((number, row))
    return rows


def _item(path: Path, line: int, row: dict[str, object]) -> BatchItem:
    try:
        return BatchItem.model_validate(row)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]) or "row"
        raise BatchInputError(f"{path}:{line}: {where}: {problem['msg']}") from error


def _anchored(item: BatchItem, folder: Path) -> BatchItem:
    if item.query_file is None or item.query_file.is_absolute():
        return item
    return item.model_copy(update={"query_file": (folder / item.query_file).resolve()})


def passed_by_reference(items: list[BatchItem], folder: Path) -> list[BatchItem]:
    """The items with every large inline query moved into a file under ``folder``."""
    moved = []
    for item in items:
        if item.query is None:
            moved.append(item)
            continue
        query, query_file = by_reference(item.query, folder)
        moved.append(item.model_copy(update={"query": query, "query_file": query_file}))
    return moved
