"""Perstack analytics: event streams and workspaces into Parquet, audited with DuckDB."""

from analytics.catalog import open_catalog, refresh_catalog
from analytics.dataset import Dataset, default_root
from analytics.errors import AnalyticsError
from analytics.ingest import IngestReport, ingest
from analytics.queries import QueryResult, named_queries, run

__all__ = [
    "AnalyticsError",
    "Dataset",
    "IngestReport",
    "QueryResult",
    "default_root",
    "ingest",
    "named_queries",
    "open_catalog",
    "refresh_catalog",
    "run",
]
