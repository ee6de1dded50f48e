from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from analytics import Dataset, open_catalog, run


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "dataset"


@pytest.fixture
def query(data_dir: Path) -> Callable[..., list[dict[str, Any]]]:
    """Run SQL or a named query on the dataset's real DuckDB catalog file; rows as dicts."""

    def _query(sql: str, prices: Path | None = None) -> list[dict[str, Any]]:
        con = open_catalog(Dataset(data_dir), prices)
        try:
            result = run(con, sql)
        finally:
            con.close()
        return [dict(zip(result.columns, row, strict=True)) for row in result.rows]

    return _query
