"""Event files: every event has one, and a history a checkpoint file holds is pointed at
(``elidedMessages``), not written again for every event of every step."""

import contextlib
import io
import json
from typing import Any

from runtime.cli import main
from runtime.events import parse_event
from tests.runtime.harness import Project

MIB = 1 << 20
LOOK = {"tool_use": [{"name": "listDirectory", "input": {"path": "."}}]}
WRITE_BIG = {"tool_use": [{"name": "writeTextFile", "input": {"path": "b", "text": "a" * MIB}}]}
HOLDERS = ("checkpoint", "nextCheckpoint", "initialCheckpoint")


def event_files(project: Project) -> dict[str, dict[str, Any]]:
    """Each event file's content, by event id."""
    paths = project.workspace.glob("perstack/jobs/*/runs/*/event-*.json")
    return {(data := json.loads(p.read_bytes()))["id"]: data for p in paths}


def restored(project: Project, holder: dict[str, Any]) -> list[str]:
    """The message ids of a stored history, its elided part read back from its checkpoint."""
    ids = [m["id"] for m in holder["messages"]]
    elided = holder.get("elidedMessages")
    if elided is None:
        return ids
    (path,) = project.workspace.glob(f"perstack/jobs/*/checkpoints/{elided['checkpointId']}.json")
    shared = json.loads(path.read_bytes())["messages"][: elided["count"]]
    return [m["id"] for m in shared] + ids


def test_a_large_history_is_not_written_again_in_the_event_files_of_every_step(
    project: Project,
) -> None:
    result = project.run([WRITE_BIG, *[LOOK] * 10, {"text": "done"}])
    assert result.code == 0
    total = sum(p.stat().st_size for p in project.workspace.glob("perstack/jobs/*/runs/*/*"))
    # The history (2 MiB after step 1) was written about four times per step: ~100 MiB.
    # Now the new megabytes appear in step 1's events only.
    assert total < 12 * MIB
    stdout = sum(len(e.to_json()) for e in result.events)
    assert stdout > 70 * MIB  # stdout keeps every event whole


def test_every_event_has_its_file_and_every_history_can_be_read_back(project: Project) -> None:
    result = project.run([LOOK, LOOK, {"text": "done"}])
    files = event_files(project)
    assert set(files) == {e.id for e in result.events}  # none lost
    pointed = 0
    for event in result.events:
        stored = files[event.id]
        whole = json.loads(event.to_json())
        for name in HOLDERS:
            if name in whole:
                assert restored(project, stored[name]) == [m["id"] for m in whole[name]["messages"]]
                pointed += "elidedMessages" in stored[name]
        if event.type == "startGeneration":
            assert restored(project, stored) == [m["id"] for m in whole["messages"]]
            pointed += "elidedMessages" in stored
    assert pointed >= 5


def test_log_counts_the_messages_a_generation_was_given(project: Project) -> None:
    result = project.run([LOOK, LOOK, {"text": "done"}])
    last = result.of("startGeneration")[-1]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert (
            main(["log", "--workspace", str(project.workspace), "--type", "startGeneration"]) == 0
        )
    assert f"{len(last.messages)} messages" in out.getvalue().splitlines()[-2]


def test_event_files_stay_readable_as_events(project: Project) -> None:
    project.run([LOOK, {"text": "done"}])
    for path in project.workspace.glob("perstack/jobs/*/runs/*/event-*.json"):
        assert parse_event(path.read_text()).type in path.name
