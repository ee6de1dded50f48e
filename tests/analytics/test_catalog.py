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
    from analytics import Dataset, refresh_catalog

    ingest([write_jsonl(tmp_path / "a.jsonl", run_events("r1"))], data_dir)
    ingest([write_jsonl(tmp_path / "b.jsonl", run_events("r2"))], data_dir, refresh=False)
    catalog = data_dir / "catalog.duckdb"
    old = catalog.read_bytes()
    bad = tmp_path / "prices.csv"
    bad.write_text("model,input_usd_per_mtok\n")  # a prices file without its columns
    dataset = Dataset(data_dir)
    with dataset.locked(), pytest.raises(PricesFileError):
        refresh_catalog(dataset, bad)
    assert catalog.read_bytes() == old
    assert sorted(p.name for p in data_dir.iterdir() if "catalog" in p.name) == ["catalog.duckdb"]
    assert query("SELECT count(*) AS n FROM runs") == [{"n": 1}]
    ingest([], data_dir)  # what the failed build left to do is still to do
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


def test_readers_in_threads_of_one_process_each_open_the_catalog(
    tmp_path: Path, data_dir: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from analytics import Dataset, open_catalog, run

    ingest([write_jsonl(tmp_path / "a.jsonl", run_events("r1"))], data_dir)
    held = open_catalog(Dataset(data_dir))
    try:
        # DuckDB shares one database per file in a process: a second reader failed on the
        # first one's locked configuration, and one opened after an ingest saw the old file.
        ingest([write_jsonl(tmp_path / "b.jsonl", run_events("r2"))], data_dir)

        def count_runs(_: int) -> int:
            con = open_catalog(Dataset(data_dir))
            try:
                return int(run(con, "SELECT count(*) FROM runs").rows[0][0])
            finally:
                con.close()

        with ThreadPoolExecutor(max_workers=4) as pool:
            assert list(pool.map(count_runs, range(12))) == [2] * 12
        assert run(held, "SELECT count(*) FROM runs").rows[0][0] == 2  # parts are replaced
    finally:
        held.close()


@pytest.mark.parametrize(
    ("folder", "named"),
    [("user=ann", "'='"), ("audit[prod]", "[ ]"), ("all*", "*")],
)
def test_a_dataset_path_duckdb_would_misread_is_refused_naming_why(
    tmp_path: Path, folder: str, named: str
) -> None:
    from analytics import Dataset, open_catalog
    from analytics.errors import DatasetPathError

    root = tmp_path / folder / "audit"
    with pytest.raises(DatasetPathError) as raised:
        ingest([write_jsonl(tmp_path / "a.jsonl", run_events("r1"))], root)
    message = str(raised.value)
    assert f"({folder!r})" in message and named in message
    assert message.endswith("pass another --data (or PERSTACK_AUDIT_DATA)")
    assert not root.exists()
    with pytest.raises(DatasetPathError):
        open_catalog(Dataset(root))


def test_a_catalog_refresh_applies_what_ingests_without_one_left_to_do(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    from analytics import Dataset, refresh_catalog

    ingest([write_jsonl(tmp_path / "a.jsonl", run_events("r1"))], data_dir)
    ingest([write_jsonl(tmp_path / "b.jsonl", run_events("r2"))], data_dir, refresh=False)
    dataset = Dataset(data_dir)
    with dataset.locked():
        refresh_catalog(dataset)
    assert query("SELECT run_id FROM runs ORDER BY run_id") == [{"run_id": "r1"}, {"run_id": "r2"}]
    assert not (data_dir / "_state" / "touched.json").exists()
