"""An ingest killed at any point loses nothing and doubles nothing: the next ingest of the
same files leaves the dataset as one uninterrupted ingest would have."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from analytics import Dataset, ingest, open_catalog, run

from .runs import RunBuilder, write_jsonl

INGEST_TIMEOUT_S = 120
# The child dies (os._exit: no cleanup, like a kill) just before its Nth file rename, the
# step that makes each written file count: Parquet parts, state files, snapshots, catalog.
CRASHING_INGEST = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path

    crash_at, renames = int(sys.argv[3]), 0

    def crash_before_rename(event, args):
        global renames
        if event == "os.rename":
            renames += 1
            if renames == crash_at:
                os._exit(75)

    sys.addaudithook(crash_before_rename)
    from analytics import ingest
    ingest([Path(sys.argv[1])], Path(sys.argv[2]))
    """
)
COUNTS = (
    "SELECT (SELECT count(*) FROM events) AS events, "
    "(SELECT count(DISTINCT event_id) FROM events) AS distinct_events, "
    "(SELECT count(*) FROM tool_calls) AS tool_calls, "
    "(SELECT count(*) FROM tool_results) AS tool_results, "
    "(SELECT count(*) FROM checkpoint_versions) AS checkpoints, "
    "(SELECT count(*) FROM messages) AS messages, "
    "(SELECT count(*) FROM runs) AS runs, "
    "(SELECT count(*) FROM generations) AS generations"
)
LIVE = {
    "runs": "SELECT * FROM runs_live",
    "generations": "SELECT * FROM generations_live",
    "tool_calls": "SELECT * EXCLUDE (args, result, result_text) FROM tool_calls_live",
}
SNAPSHOTS_MATCH = " UNION ALL ".join(
    f"SELECT '{name}' AS view, count(*) AS differ FROM ("
    f"(SELECT * FROM {name} EXCEPT {live}) UNION ALL ({live} EXCEPT SELECT * FROM {name}))"
    for name, live in LIVE.items()
)


def one_run(run: str) -> list[dict[str, object]]:
    builder = RunBuilder(job="j", run=run).start()
    builder.tool_step(1, [("@perstack/base", "exec", 5, False)])
    builder.tool_step(2, [("@perstack/base", "exec", 7, True)])
    builder.complete(3)
    return builder.events


def answers(data: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    con = open_catalog(Dataset(data))
    try:
        return run(con, COUNTS).rows, run(con, SNAPSHOTS_MATCH).rows
    finally:
        con.close()


def test_an_ingest_killed_before_any_rename_is_completed_by_the_next(tmp_path: Path) -> None:
    first = write_jsonl(tmp_path / "in" / "first.jsonl", one_run("r1"))
    second = write_jsonl(tmp_path / "in" / "second.jsonl", one_run("r2"))
    base = tmp_path / "base"
    ingest([first], base)
    clean = tmp_path / "clean"
    shutil.copytree(base, clean)
    ingest([second], clean)
    expected = answers(clean)
    assert expected[1] == [("runs", 0), ("generations", 0), ("tool_calls", 0)]

    crash_at = 0
    while True:
        crash_at += 1
        data = tmp_path / f"crash-{crash_at}"
        shutil.copytree(base, data)
        done = subprocess.run(
            [sys.executable, "-c", CRASHING_INGEST, str(second), str(data), str(crash_at)],
            capture_output=True,
            text=True,
            timeout=INGEST_TIMEOUT_S,
            check=False,
        )
        assert done.returncode in (0, 75), done.stderr
        ingest([second], data)
        assert answers(data) == expected, f"killed before rename {crash_at}"
        assert not [p for p in data.rglob("*") if ".tmp" in p.name], crash_at
        if done.returncode == 0:
            break
        shutil.rmtree(data)
    assert crash_at > 5  # the child did rename files before it was let through
