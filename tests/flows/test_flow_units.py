"""The plain functions the flows wire, without Prefect: event lines, the tally of a run,
artifacts, queries by reference."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from flows.execution import MAX_QUERY_BYTES, ExecutionResult
from flows.logs import describe
from flows.query import INLINE_QUERY_BYTES, by_reference, read_query
from flows.tally import Tally
from runtime.checkpoint import Usage


def _stop(kind: str, expert: str, run: str, tokens: int, **extra: object) -> dict[str, object]:
    return {
        "type": kind,
        "jobId": "j",
        "runId": run,
        "expertKey": expert,
        "stepNumber": 3,
        "checkpoint": {"usage": {"inputTokens": tokens, "totalTokens": tokens}},
        **extra,
    }


def test_tool_calls_results_and_the_answer_read_as_lines():
    call = {
        "type": "callTools",
        "stepNumber": 2,
        "toolCalls": [{"toolName": "readTextFile", "args": {"path": "a.txt"}}],
    }
    result = {
        "type": "resolveToolResults",
        "stepNumber": 2,
        "toolResults": [
            {
                "toolName": "readTextFile",
                "isError": True,
                "result": [{"type": "textPart", "text": "no such\nfile"}],
            }
        ],
    }
    done = _stop("completeRun", "e", "r", 42, text="All done.")

    assert describe(call) == (logging.INFO, 'step 2: calls readTextFile({"path": "a.txt"})')
    assert describe(result) == (logging.WARNING, "step 2: readTextFile failed no such file")
    assert describe(done) == (logging.INFO, "step 3: completed (42 tokens): All done.")
    assert describe({"type": "streamRunResult", "delta": "x"}) is None
    assert describe({"type": "somethingNewer"}) == (logging.DEBUG, "somethingNewer")


def test_a_stop_by_error_names_the_error():
    event = _stop("stopRunByError", "e", "r", 1, error={"name": "APIError", "message": "boom"})

    assert describe(event) == (logging.WARNING, "step 3: stopRunByError: APIError: boom")


def _generation(kind: str, run: str, step: int, tokens: int) -> dict[str, object]:
    usage = {"inputTokens": tokens, "totalTokens": tokens}
    return {"type": kind, "jobId": "j", "runId": run, "stepNumber": step, "usage": usage}


def test_the_tally_sums_every_generations_usage_and_keeps_the_coordinators_answer():
    tally = Tally("lead")
    tally.add({"type": "startRun", "jobId": "j", "runId": "r1", "stepNumber": 1})
    tally.add(_generation("callTools", "r1", 1, 4))
    tally.add(_generation("callDelegate", "r1", 1, 4))  # the same generation as callTools
    tally.add(_generation("callTools", "r2", 2, 6))
    tally.add(_stop("completeRun", "helper", "r2", 10, text="helper's answer", usage={}))
    tally.add(_generation("retry", "r1", 3, 1))
    # completeRun's usage is its generation's; its checkpoint's, the job's running total.
    last = {"inputTokens": 3, "totalTokens": 3}
    tally.add(_stop("completeRun", "lead", "r1", 15, text="lead's answer", usage=last))

    assert tally.job_id == "j"
    assert tally.final_text == "lead's answer" and tally.stop == "completeRun"
    assert tally.usage() == Usage(input_tokens=14, total_tokens=14)


def test_small_queries_travel_inline_and_large_ones_as_a_file(tmp_path):
    small, large = "a" * INLINE_QUERY_BYTES, "b" * (INLINE_QUERY_BYTES + 1)

    assert by_reference(small, tmp_path) == (small, None)
    query, path = by_reference(large, tmp_path)
    assert query is None and path is not None and read_query(None, path) == large
    assert by_reference(large, tmp_path) == (None, path)  # same content, same file


def test_a_query_too_long_for_a_command_line_goes_to_the_runtime_as_a_file(tmp_path):
    from flows.execution import ExecutionPlan, process_args, query_by_file, write_inputs

    assert not query_by_file("é" * (MAX_QUERY_BYTES // 2))
    large = "x" * (MAX_QUERY_BYTES + 1)
    assert query_by_file(large)
    plan = ExecutionPlan(
        expert="e", query=large, user="u", workspaces=tmp_path, captures=tmp_path / "captures"
    )
    inputs = write_inputs(plan, tmp_path / "captures" / "run-1")
    assert inputs is not None
    args = process_args(plan, tmp_path / "ws", inputs)
    assert large not in args
    query_file = Path(args[args.index("--query-file") + 1])
    assert query_file.parent == inputs.resolve()
    assert query_file.read_text() == large


def test_inputs_are_never_written_through_what_the_expert_left_in_its_workspace(tmp_path):
    # Regression: the script and a large query were written into the workspace, through
    # a link planted there by an earlier run (overwriting a host file as root), or into
    # a FIFO (blocking the next execution for good).
    from flows.execution import ExecutionPlan, prepare_workspace, write_inputs

    outside = tmp_path / "outside.txt"
    outside.write_text("host file")
    script = tmp_path / "script.json"
    script.write_text("[]")
    plan = ExecutionPlan(
        expert="e",
        query="x" * (MAX_QUERY_BYTES + 1),
        user="mallory",
        workspaces=tmp_path / "workspaces",
        captures=tmp_path / "captures",
        provider="scripted",
        script=script,
    )
    workspace = prepare_workspace(plan, "process")
    for name in (".perstack-script.json", ".perstack-query.txt", "script.json", "query.txt"):
        (workspace / name).symlink_to(outside)
    os.mkfifo(workspace / "input")
    inputs = write_inputs(plan, tmp_path / "captures" / "run-1")
    assert inputs is not None
    assert sorted(p.name for p in inputs.iterdir()) == ["query.txt", "script.json"]
    assert outside.read_text() == "host file"
    assert prepare_workspace(plan, "process") == workspace


def test_an_execution_without_a_script_or_a_large_query_has_no_inputs(tmp_path):
    from flows.execution import ExecutionPlan, write_inputs

    plan = ExecutionPlan(
        expert="e", query="hi", user="u", workspaces=tmp_path, captures=tmp_path / "c"
    )
    assert write_inputs(plan, tmp_path / "c" / "run") is None


def test_the_run_summary_says_how_it_ended_and_where_its_files_are():
    from flows.artifacts import run_summary

    result = ExecutionResult(
        expert="e",
        user="u",
        mode="process",
        outcome="failed",
        reason="exited with code 1",
        exit_code=1,
        stop="stopRunByError",
        final_text=None,
        error="APIError: boom",
        usage=Usage(total_tokens=7),
        steps=2,
        events=9,
        job_id="job1",
        workspace="/w",
        events_path="/c/events.jsonl",
        stderr_path="/c/stderr.log",
        started_ms=0,
        duration_ms=1500.0,
        run_ms=1200.0,
    )
    text = run_summary(result)

    assert text.startswith("# e for u: failed")
    assert "stopRunByError" in text and "APIError: boom" in text and "`job1`" in text
    assert "_no final answer_" in text


def test_a_query_too_large_for_the_command_line_runs_to_completion(tmp_path):
    import asyncio

    from flows.execution import ExecutionPlan, execute

    repo = Path(__file__).resolve().parents[2]
    example = repo / "examples" / "support-report"
    script = tmp_path / "script.json"
    script.write_text('[{"text": "read it all"}]')
    large = "Please triage. " + "x" * (MAX_QUERY_BYTES + 10)
    plan = ExecutionPlan(
        expert="support-analyst",
        query=large,
        user="bigquery",
        workspaces=tmp_path / "ws",
        captures=tmp_path / "captures",
        config=example / "perstack.toml",
        seed=example / "workspace",
        mode="process",
        provider="scripted",
        script=script,
    )
    result = asyncio.run(execute(plan, "process"))
    assert result.outcome == "completed", result.reason
    assert result.final_text == "read it all"


def test_a_runtime_that_refuses_to_start_says_why_in_the_reason(tmp_path):
    import asyncio

    from flows.execution import ExecutionPlan, execute

    repo = Path(__file__).resolve().parents[2]
    example = repo / "examples" / "support-report"
    plan = ExecutionPlan(
        expert="no-such-expert",
        query="hi",
        user="dora",
        workspaces=tmp_path / "ws",
        captures=tmp_path / "captures",
        config=example / "perstack.toml",
        mode="process",
        provider="scripted",
        script=example / "script.json",
    )
    result = asyncio.run(execute(plan, "process"))
    assert result.outcome != "completed"
    assert "no Expert named 'no-such-expert'" in result.reason


def test_batch_files_refuse_empty_queries_and_accept_a_spreadsheets_csv(tmp_path):
    import pytest

    from flows.batch_input import read_items
    from flows.errors import BatchInputError

    blank = tmp_path / "blank.jsonl"
    blank.write_text('{"user": "alice", "query": "   "}\n')
    with pytest.raises(BatchInputError, match=r"blank.jsonl:1: .*query is empty"):
        read_items(blank)
    excel = tmp_path / "excel.csv"
    excel.write_bytes("user,query\r\nalice,Triage the tickets\r\n".encode("utf-8-sig"))
    assert [(i.user, i.query) for i in read_items(excel)] == [("alice", "Triage the tickets")]
    empty_cell = tmp_path / "empty.csv"
    empty_cell.write_text("user,query\nbob,\n")
    with pytest.raises(BatchInputError, match=r"empty.csv:2"):
        read_items(empty_cell)


def _result_in(workspace: Path, events_path: Path, job_id: str = "job1") -> ExecutionResult:
    return ExecutionResult(
        expert="e",
        user="mallory",
        mode="container",
        outcome="completed",
        reason="",
        exit_code=0,
        stop="completeRun",
        final_text="done",
        error=None,
        usage=Usage(),
        steps=1,
        events=3,
        job_id=job_id,
        workspace=str(workspace),
        events_path=str(events_path),
        stderr_path="",
        started_ms=0,
        duration_ms=1.0,
        run_ms=1.0,
    )


def test_a_run_leaves_its_job_folder_and_its_captured_stream_to_ingest(tmp_path):
    from flows.ingest import trace_paths

    job = tmp_path / "ws" / "perstack" / "jobs" / "job1"
    job.mkdir(parents=True)
    stream = tmp_path / "events.jsonl"
    stream.write_text("")
    assert trace_paths(_result_in(tmp_path / "ws", stream)) == [job, stream]


def test_a_job_folder_reached_through_a_link_is_not_ingested(tmp_path):
    # Regression: an Expert replaced its job folder by a link to another user's jobs, and
    # the flow ingested that user's trace under the Expert's user.
    from flows.ingest import trace_paths

    bob = tmp_path / "bob" / "perstack" / "jobs"
    bob.mkdir(parents=True)
    jobs = tmp_path / "mallory" / "perstack" / "jobs"
    jobs.mkdir(parents=True)
    (jobs / "job1").symlink_to(bob)
    stream = tmp_path / "events.jsonl"
    stream.write_text("")
    assert trace_paths(_result_in(tmp_path / "mallory", stream)) == [stream]
    (jobs / "job1").unlink()
    (tmp_path / "mallory" / "perstack" / "jobs").rename(tmp_path / "elsewhere")
    (tmp_path / "mallory" / "perstack" / "jobs").symlink_to(tmp_path / "bob" / "perstack")
    assert trace_paths(_result_in(tmp_path / "mallory", stream)) == [stream]


def test_log_lines_carry_no_control_characters():
    from flows.logs import clip

    line = clip("red \x1b[31mALERT\x1b[0m\r\nnext\tline\x07")
    assert "\x1b" not in line and "\x07" not in line
    assert line.startswith("red ") and "ALERT" in line and "next line" in line


def _prefect_yaml() -> dict[str, Any]:
    import yaml

    repo = Path(__file__).resolve().parents[2]
    loaded: dict[str, Any] = yaml.safe_load((repo / "deployments" / "prefect.yaml").read_text())
    return loaded


def test_everything_a_docker_pool_run_writes_is_on_a_mounted_volume():
    # Regression: the audit dataset went to the flow-run container's own ./.data/audit,
    # removed with the container after every run.
    from analytics.dataset import DATA_ENV as AUDIT_ENV
    from flows.defaults import DATA_ENV

    pool = _prefect_yaml()["definitions"]["docker_pool"]["job_variables"]
    mounted = [Path(volume.split(":")[1]) for volume in pool["volumes"]]
    for name in (DATA_ENV, AUDIT_ENV):
        path = Path(pool["env"][name])
        assert path.is_absolute() and any(path.is_relative_to(m) for m in mounted), name


def test_data_paths_in_logs_and_artifacts_are_absolute(tmp_path, monkeypatch):
    # Regression: a relative $PERSTACK_DATA gave artifacts paths relative to the worker's
    # checkout (`.data/captures/...`), which mean nothing to whoever reads the UI.
    from flows.defaults import captures_root, dataset_root, workspaces_root

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PERSTACK_DATA", "data")
    monkeypatch.delenv("PERSTACK_AUDIT_DATA", raising=False)
    assert workspaces_root() == tmp_path / "data" / "workspaces"
    assert captures_root() == tmp_path / "data" / "captures"
    assert dataset_root() == tmp_path / ".data" / "audit"
    assert dataset_root(Path("elsewhere")) == tmp_path / "elsewhere"


def _launcher_event(job: str, run: str, status: str, message: str | None = None) -> str:
    import json

    event = {
        "id": f"{run}-{status}",
        "type": "dockerContainerStatus",
        "timestamp": 1_700_000_000_000,
        "jobId": job,
        "runId": run,
        "status": status,
        "service": "runtime",
        "message": message,
    }
    return json.dumps(event) + "\n"


def test_roots_of_users_folders_are_ingested_user_by_user(tmp_path):
    # Regression: the hourly ingest read `.data/workspaces` with no user, so runs only it
    # sees (cancelled, crashed) had none, and it never read the captured streams, where
    # alone the launcher's events of those runs are.
    from flows.execution import capture_folder
    from flows.ingest import paths_by_user

    workspaces, captures = tmp_path / "workspaces", tmp_path / "captures"
    (workspaces / "carol" / "perstack" / "jobs" / "j1").mkdir(parents=True)
    (workspaces / "new-user").mkdir()  # no run yet: nothing of it is read
    (workspaces / "new-user" / "notes.jsonl").write_text(_launcher_event("x", "y", "running"))
    (workspaces / "mallory" / "perstack").mkdir(parents=True)
    (workspaces / "mallory" / "perstack" / "jobs").symlink_to(workspaces / "carol" / "perstack")
    capture = capture_folder(captures, "dave-smith")
    capture.mkdir(parents=True)
    (capture / "events.jsonl").write_text(_launcher_event("j2", "r2", "running"))
    (captures / "stray").mkdir()
    stream = tmp_path / "elsewhere.jsonl"
    stream.write_text("")

    # A user whose name looks like a capture's, and whose Expert left an events.jsonl.
    (workspaces / "carol-abcdefghijklmnopqrstuvwx").mkdir()
    (workspaces / "carol-abcdefghijklmnopqrstuvwx" / "events.jsonl").write_text(
        _launcher_event("j3", "r3", "running")
    )

    groups = paths_by_user([workspaces, captures, stream], None, captures)

    assert groups == {
        "carol": [workspaces / "carol" / "perstack" / "jobs"],
        "dave-smith": [capture / "events.jsonl"],
        None: [stream],
    }
    assert paths_by_user([workspaces], "erin") == {"erin": [workspaces]}
    assert paths_by_user([workspaces / "carol"], None) == {None: [workspaces / "carol"]}


def test_what_the_ingest_of_each_user_says_is_in_the_report(tmp_path):
    # Regression: the ingest of several users kept counts and rows but dropped each
    # ingest's notes (an upgrade of the dataset's format), so the flow's logs never said.
    import json

    from flows.ingest import ingest_by_user

    folders = []
    for user in ("ann", "bo"):
        folder = tmp_path / user
        folder.mkdir()
        stream = _launcher_event(f"job-{user}", f"run-{user}", "running")
        (folder / "events.jsonl").write_text(stream)
        (folder / "notes.jsonl").write_text('{"note": "not an event"}\n')
        folders.append(folder)
    audit = tmp_path / "audit"
    ingest_by_user({"ann": [folders[0]]}, audit)
    (audit / "_state" / "format.json").write_text(json.dumps({"format": 3}))

    report = ingest_by_user({"ann": [folders[0]], "bo": [folders[1]]}, audit)

    assert report.files_read == 1
    assert [note.split(": ", 1)[1][:40] for note in report.notes] == [
        "upgraded the dataset from format 3 to 4:"
    ]
    assert sorted(s.split(": ")[0] for s in report.skipped) == [
        str(folders[0] / "notes.jsonl"),
        str(folders[1] / "notes.jsonl"),
    ]


def test_launcher_events_of_captures_land_with_their_user_and_their_outcome(tmp_path):
    from analytics import Dataset, open_catalog, run
    from flows.execution import capture_folder
    from flows.ingest import ingest_by_user, paths_by_user

    captures = tmp_path / "captures"
    for user, outcome in (("ann", "timedOut: wall-clock limit of 3 s reached"), ("bo", None)):
        capture = capture_folder(captures, user)
        capture.mkdir(parents=True)
        lines = _launcher_event(f"job-{user}", f"run-{user}", "running")
        lines += _launcher_event(f"job-{user}", f"run-{user}", "stopped", outcome or "cancelled")
        (capture / "events.jsonl").write_text(lines)

    ingest_by_user(paths_by_user([captures], None, captures), tmp_path / "audit")

    con = open_catalog(Dataset(tmp_path / "audit"))
    try:
        rows = run(
            con,
            "select user_name, message from events "
            "where type = 'dockerContainerStatus' and status = 'stopped' order by 1",
        ).rows
    finally:
        con.close()
    assert rows == [
        ("ann", "timedOut: wall-clock limit of 3 s reached"),
        ("bo", "cancelled"),
    ]


# A flow's process, reduced to what matters here: one local execution of the slow script.
_FLOW_PROCESS = """
import asyncio, json, sys
from pathlib import Path
from flows.execution import ExecutionPlan, execute
root = Path(sys.argv[1])
plan = ExecutionPlan(
    expert="support-analyst", query="Triage", user="orphan", workspaces=root / "workspaces",
    captures=root / "captures", config=Path(sys.argv[2]) / "perstack.toml",
    seed=Path(sys.argv[2]) / "workspace", provider="scripted", script=Path(sys.argv[3]),
    env={"PERSTACK_RETRY_BASE_DELAY_MS": "60000"}, process_records=root / "records",
)
result = asyncio.run(execute(plan, "process"))
print(json.dumps({"outcome": result.outcome}), flush=True)
"""


def _start_flow_process(tmp_path: Path):  # -> (Popen, runtime pid)
    import subprocess
    import sys
    import time

    from flows.process_records import start_ticks
    from tests.flows.flow_harness import EXAMPLE, REPO, slow_script

    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _FLOW_PROCESS,
            str(tmp_path),
            str(EXAMPLE),
            str(slow_script(tmp_path)),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not list((tmp_path / "records").glob("*.json")):
        assert parent.poll() is None and time.monotonic() < deadline, "no runtime recorded"
        time.sleep(0.1)
    (path,) = (tmp_path / "records").glob("*.json")
    import json

    pid = json.loads(path.read_text())["pid"]
    assert start_ticks(pid) is not None
    # In its slow phase: the first generation failed and it waits to retry.
    while "retry" not in (next((tmp_path / "captures").glob("*/events.jsonl")).read_text()):
        assert time.monotonic() < deadline, "the runtime never reached its retry wait"
        time.sleep(0.1)
    return parent, pid


def _gone_within(pid: int, seconds: float) -> bool:
    import time

    from flows.process_records import start_ticks

    deadline = time.monotonic() + seconds
    while start_ticks(pid) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_a_local_runtime_ends_when_the_flow_process_is_killed(tmp_path):
    # Regression: after `kill -9` of a worker's flow process the runtime lived on as an
    # orphan until its next stdout write failed (minutes, or never during a long tool call).
    import signal

    from flows.process import kill_group

    parent, pid = _start_flow_process(tmp_path)
    parent.send_signal(signal.SIGKILL)
    parent.communicate()
    try:
        assert _gone_within(pid, 15), "the runtime outlived the process that started it"
    finally:
        kill_group(pid, signal.SIGKILL)


def test_a_hook_in_another_process_ends_a_recorded_local_runtime(tmp_path):
    # Regression: the crash hook killed the process groups it had in memory, and Prefect's
    # workers run hooks in a process of their own, where that memory is empty.
    import json

    from flows.process_records import end_recorded

    parent, pid = _start_flow_process(tmp_path)
    try:
        assert end_recorded(tmp_path / "records", grace_seconds=10) == 1
        assert _gone_within(pid, 1)
        out, _ = parent.communicate(timeout=30)
    finally:
        parent.kill()
    assert json.loads(out)["outcome"] != "completed"
    assert not (tmp_path / "records").exists()


def test_a_record_whose_pid_now_names_another_process_is_left_alone(tmp_path):
    import json
    import os

    from flows.process_records import end_recorded, start_ticks

    records = tmp_path / "records"
    records.mkdir()
    mine = start_ticks(os.getpid())
    assert mine is not None
    stale = {"pid": os.getpid(), "started": mine - 1, "job_id": "j"}
    (records / "j.json").write_text(json.dumps(stale))

    assert end_recorded(records, grace_seconds=1) == 0
    assert not (records / "j.json").exists()


def test_production_deployments_never_fall_back_to_an_unhardened_process():
    # Regression: with `mode: auto` an engine outage ran the nightly Expert as a local
    # process on the worker, unisolated, and the run reported Completed.
    executions = [
        d
        for d in _prefect_yaml()["deployments"]
        if d["entrypoint"] in ("flows/run_expert.py:run_expert", "flows/batch.py:batch")
    ]
    assert executions
    assert {d["name"]: d["parameters"]["mode"] for d in executions} == {
        d["name"]: "container" for d in executions
    }


def test_a_local_process_run_says_it_was_not_isolated_and_why():
    from flows.artifacts import run_summary

    result = _result_in(Path("/w"), Path("/c/events.jsonl")).model_copy(
        update={"mode": "process", "fallback": "no Docker engine is reachable: refused"}
    )
    assert "**Not isolated**" in run_summary(result)
    assert "no Docker engine is reachable: refused" in run_summary(result)
    assert "**Not isolated**" not in run_summary(result.model_copy(update={"mode": "container"}))


def test_a_parameter_given_for_a_run_wins_over_its_alternatives_deployment_default():
    # Regression: `--param query_file=...` on a deployment that pins `query` failed with
    # "give exactly one of query and query_file" (and `items` against a pinned
    # `items_file`), and fired an alert.
    from flows.run_context import prefer_given

    pinned = {"query": "Triage the tickets.", "items_file": "deployments/batch.jsonl"}
    query_file = Path("/srv/q.txt")

    assert prefer_given(("query", "Triage the tickets."), ("query_file", query_file), pinned) == (
        None,
        query_file,
    )
    items = [{"user": "a", "query": "q"}]
    both = (("items", items), ("items_file", Path("deployments/batch.jsonl")))
    assert prefer_given(*both, pinned) == (items, None)
    # Both given for this run (or no deployment): the flow refuses the pair, as before.
    assert prefer_given(("query", "other"), ("query_file", query_file), pinned) == (
        "other",
        query_file,
    )
    assert prefer_given(("query", "q"), ("query_file", query_file), {}) == ("q", query_file)
