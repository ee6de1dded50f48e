"""Audit queries on the dataset, as plain functions and a task."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from analytics import Dataset, QueryResult, open_catalog, run
from flows.defaults import dataset_root


def audit(dataset: Path | None, query: str) -> QueryResult:
    """Run a named audit query (or SQL) on the dataset's catalog."""
    con = open_catalog(Dataset(dataset_root(dataset)))
    try:
        return run(con, query)
    finally:
        con.close()


def as_rows(result: QueryResult) -> list[dict[str, Any]]:
    return [dict(zip(result.columns, (_plain(v) for v in row), strict=True)) for row in result.rows]


def _plain(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | None) else str(value)


@task(name="audit", cache_policy=NO_CACHE, persist_result=False)
async def audit_task(dataset: Path | None, query: str) -> list[dict[str, Any]]:
    return as_rows(await asyncio.to_thread(audit, dataset, query))
