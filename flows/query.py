"""Queries passed by value or by reference (a file), so that none is too large for a flow
parameter: Prefect's API refuses parameters over 512 KiB in all, and a batch holds many."""

from __future__ import annotations

import hashlib
from pathlib import Path

# Queries up to this size travel as parameters; larger ones as a file path. Small enough
# that a batch's subflow parameters stay far below the API's limit.
INLINE_QUERY_BYTES = 16 * 1024


def read_query(query: str | None, query_file: Path | None) -> str:
    """The query text from exactly one of ``query`` and ``query_file``."""
    if (query is None) == (query_file is None):
        raise ValueError("give exactly one of query and query_file")
    if query_file is not None:
        try:
            return query_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(
                f"query file {query_file.name} cannot be read ({error.__class__.__name__}: "
                f"{getattr(error, 'strerror', None) or error}); give a readable UTF-8 file"
            ) from error
    assert query is not None
    return query


def by_reference(query: str, folder: Path) -> tuple[str | None, Path | None]:
    """(query, None) when small, else (None, path of a file holding it) under ``folder``;
    the file is named after its content, so writing it twice is harmless."""
    data = query.encode()
    if len(data) <= INLINE_QUERY_BYTES:
        return query, None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"query-{hashlib.sha256(data).hexdigest()[:16]}.txt"
    if not path.exists():
        path.write_bytes(data)
    return None, path.resolve()
