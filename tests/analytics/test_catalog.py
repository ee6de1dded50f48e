"""The catalog file is built aside and renamed into place: readers see an old one or a new
one, never half of one, and a failed build leaves the old one."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from analytics import ingest
from analytics.errors import PricesFileError

from .runs import RunBuilder, write_jsonl

Query = Callable[..., list[dict[str, Any]]]
READER_TIMEOUT_S = 120


def run_events(run: str) -> list[dict[str, Any]]:
    builder = RunBuilder(job="j", run=run).start()
    builder.tool_step(1, [("@perstack/base", "exec", 5, False)])
    builder.complete(2)
    return builder.events


def test_an_ingest_replaces_the_catalog_while_a_reader_holds_the_old_one_open(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    ingest([write_jsonl(tmp_path / "a.jsonl", run_events("r1"))], data_dir)
    catalog = data_dir / "catalog.duckdb"
    before = catalog.stat().st_ino
    reader_code = textwrap.dedent(
        f"""
        import sys, duckdb
        con = duckdb.connect({str(catalog)!r}, read_only=True)
        print(con.execute("SELECT count(*) FROM runs").fetchone()[0], flush=True)
        sys.stdin.readline()
        print(con.execute("SELECT count(*) FROM events").fetchone()[0], flush=True)
        """
    )
    reader = subprocess.Popen(
        [sys.executable, "-c", reader_code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdin is not None
        assert reader.stdout.readline().strip() == "1"
        ingest([write_jsonl(tmp_path / "b.jsonl", run_events("r2"))], data_dir)
        out, _ = reader.communicate("go\n", timeout=READER_TIMEOUT_S)
    finally:
        reader.kill()
        reader.wait()
    assert reader.returncode == 0 and int(out) > 0
    assert catalog.stat().st_ino != before
    assert query("SELECT count(*) AS n FROM runs") == [{"n": 2}]
    assert sorted(p.name for p in data_dir.iterdir() if "catalog" in p.name) == ["catalog.duckdb"]


def test_a_failed_catalog_build_leaves_the_old_catalog_as_it_was(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    ingest([write_jsonl(tmp_path / "a.jsonl", run_events("r1"))], data_dir)
    catalog = data_dir / "catalog.duckdb"
    old = catalog.read_bytes()
    (data_dir / "prices.csv").write_text("model,input_usd_per_mtok\n")  # a bad prices file
    with pytest.raises(PricesFileError):
        ingest([write_jsonl(tmp_path / "b.jsonl", run_events("r2"))], data_dir)
    assert catalog.read_bytes() == old
    assert sorted(p.name for p in data_dir.iterdir() if "catalog" in p.name) == ["catalog.duckdb"]
    (data_dir / "prices.csv").unlink()
    ingest([], data_dir)
    assert query("SELECT count(*) AS n FROM runs") == [{"n": 2}]


def test_a_copied_or_moved_dataset_reads_its_own_files(tmp_path: Path, data_dir: Path) -> None:
    # Regression: the views name files by absolute path, so a copy read the original's
    # files (and saw rows ingested there later), and a moved dataset failed every query
    # ("Cannot access file …/summaries/runs.parquet") until something was ingested into it.
    from analytics import Dataset, open_catalog, run

    def run_ids(root: Path) -> list[str]:
        con = open_catalog(Dataset(root))
        try:
            return sorted(row[0] for row in run(con, "SELECT run_id FROM runs").rows)
        finally:
            con.close()

    ingest([write_jsonl(tmp_path / "a.jsonl", run_events("r1"))], data_dir)
    copy = tmp_path / "copy"
    shutil.copytree(data_dir, copy)
    ingest([write_jsonl(tmp_path / "b.jsonl", run_events("r2"))], data_dir)
    assert run_ids(copy) == ["r1"]
    assert run_ids(data_dir) == ["r1", "r2"]

    moved = tmp_path / "moved"
    data_dir.rename(moved)
    assert run_ids(moved) == ["r1", "r2"]
