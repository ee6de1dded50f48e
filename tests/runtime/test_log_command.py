"""`perstack log` through the CLI, on jobs the CLI just ran and on the reference's disks."""

import contextlib
import io
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import runtime.ids
from runtime.cli import main
from runtime.events import EVENT_TYPES
from runtime.log.filters import DEFAULT_TAKE
from tests.reference import RECORDINGS
from tests.runtime.harness import REPO, TEAM_TOML, Project, make_project

SHARED = RECORDINGS


LOOK = {"tool_use": [{"name": "listDirectory", "input": {"path": "."}}]}
DONE = [{"tool_use": [{"name": "attemptCompletion", "input": {}}]}, {"text": "All done."}]
ASK = {"tool_use": [{"name": "askUser", "input": {"question": "Which file?"}}]}
BAD_REQUEST = {"http_error": {"status": 400, "type": "invalid_request_error", "message": "bad"}}


def delegate(name: str, query: str) -> dict[str, object]:
    return {"name": name, "input": {"query": query}}


TWO_LEVELS = [
    {"tool_use": [delegate("helper", "What is 2 + 3?")]},  # lead, step 1
    {"tool_use": [delegate("checker", "Is 2 + 3 = 5?")]},  # helper, step 2
    {"text": "Yes, 5 is right."},  # checker, step 3
    {"text": "2 + 3 = 5 (checked)."},  # helper, step 4
    {"text": "The helper says 2 + 3 = 5."},  # lead, step 5
]


@dataclass
class Shown:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    def json(self) -> dict[str, Any]:
        assert len(self.lines) == 1, "--json writes one line"
        data: dict[str, Any] = json.loads(self.out)
        return data

    def event_lines(self) -> list[str]:
        start = self.lines.index("Events:") + 2
        end = self.lines.index(self.lines[start - 1], start)
        return self.lines[start:end]


def log(workspace: Path, *args: str) -> Shown:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["log", "--workspace", str(workspace), *args])
    return Shown(code, out.getvalue(), err.getvalue())


@pytest.fixture
def team(tmp_path: Path) -> Project:
    return make_project(tmp_path, TEAM_TOML)


def stored_events(workspace: Path) -> list[dict[str, Any]]:
    paths = workspace.glob("perstack/jobs/*/runs/*/event-*.json")
    return [json.loads(p.read_text()) for p in paths]


# --- the default view -----------------------------------------------------------------


def test_by_default_the_latest_job_is_shown_one_line_per_event(team: Project) -> None:
    team.run([LOOK, *DONE], query="first")
    second = team.run([LOOK, *DONE], query="look around")
    shown = log(team.workspace)
    assert shown.code == 0, shown.err
    job_id = second.events[0].job_id
    assert shown.lines[0] == "(showing latest job)"
    assert f"Job: {job_id} (completed)" in shown.lines
    assert "Expert: worker" in shown.lines and "Steps: 2" in shown.lines
    lines = shown.event_lines()
    types = second.types()
    # Consecutive streamed deltas share one line.
    expected = [t for i, t in enumerate(types) if i == 0 or t != types[i - 1]]
    assert [line.split()[2] for line in lines] == expected
    start = next(line for line in lines if " startRun " in line)
    assert start.split()[1] == "1" and '"look around"' in start
    call = next(line for line in lines if " callTools " in line)
    assert 'listDirectory(path=".")' in call
    result = next(line for line in lines if " resolveToolResults " in line)
    assert "✓ listDirectory: " in result
    complete = next(line for line in lines if " completeRun " in line)
    assert '"All done."' in complete


def test_a_tool_that_failed_is_marked_and_its_error_shown(team: Project) -> None:
    missing = {"tool_use": [{"name": "readTextFile", "input": {"path": "nope.txt"}}]}
    team.run([missing, *DONE])
    shown = log(team.workspace, "--type", "resolveToolResults")
    (line,) = shown.event_lines()
    assert "✗ readTextFile: " in line


def test_verbose_shows_full_arguments_and_results(team: Project) -> None:
    text = "line one\n" + "x" * 300
    write = {"tool_use": [{"name": "writeTextFile", "input": {"path": "a.txt", "text": text}}]}
    team.run([write, *DONE])
    short = log(team.workspace, "--tools").out
    full = log(team.workspace, "--tools", "--verbose").out
    assert "x" * 300 not in short
    assert json.dumps(text) in full
    assert "[@perstack/base] writeTextFile" in full


def test_streamed_deltas_share_a_line_unless_verbose(team: Project) -> None:
    result = team.run(DONE)
    deltas = len(result.of("streamRunResult"))
    assert deltas > 1
    lines = log(team.workspace).event_lines()
    (stream,) = [line for line in lines if " streamRunResult " in line]
    assert f"×{deltas} " in stream
    verbose = log(team.workspace, "--verbose").out
    assert verbose.count(" streamRunResult ") == deltas


# --- JSON -----------------------------------------------------------------------------


def test_json_is_one_object_in_the_reference_shape(team: Project) -> None:
    team.run([LOOK, *DONE])
    data = log(team.workspace, "--json").json()
    assert {"job", "events", "summary", "isLatestJob", "storagePath"} <= set(data)
    assert data["isLatestJob"] is True
    assert data["job"]["status"] == "completed" and data["job"]["totalSteps"] == 2
    stored = sorted(stored_events(team.workspace), key=lambda e: e["id"])
    assert sorted(data["events"], key=lambda e: e["id"]) == stored
    assert data["summary"]["totalEvents"] == len(stored)
    assert data["summary"]["toolCallCount"] == 3  # 2 callTools + 1 resolveToolResults
    assert data["summary"]["stepRange"] == {"min": 1, "max": 2}
    assert data["totalEventsBeforeLimit"] == data["matchedAfterPagination"] == len(stored)
    assert "checkpoints" not in data and "jobSummary" not in data


def test_pretty_indents_the_same_json(team: Project) -> None:
    team.run(DONE)
    compact = log(team.workspace, "--json").json()
    pretty = log(team.workspace, "--json", "--pretty").out
    assert pretty.startswith('{\n  "job": {')
    assert json.loads(pretty) == compact
    assert json.loads(log(team.workspace, "--pretty").out) == compact


def test_naming_the_job_adds_its_checkpoints_as_the_reference_does(team: Project) -> None:
    job_id = team.run([LOOK, *DONE]).events[0].job_id
    data = log(team.workspace, "--job", job_id, "--json").json()
    assert "isLatestJob" not in data
    stored = [
        json.loads(p.read_text()) for p in team.workspace.glob("perstack/jobs/*/checkpoints/*")
    ]
    assert sorted(c["id"] for c in data["checkpoints"]) == sorted(c["id"] for c in stored)


def test_a_job_id_prefix_is_enough(team: Project) -> None:
    job_id = team.run(DONE).events[0].job_id
    assert log(team.workspace, "--job", job_id[:5], "--json").json()["job"]["id"] == job_id


# --- errors of usage ------------------------------------------------------------------


def test_an_unknown_job_lists_the_known_jobs_and_exits_2(team: Project) -> None:
    first = team.run(DONE).events[0].job_id
    second = team.run(DONE).events[0].job_id
    shown = log(team.workspace, "--job", "nosuchjob")
    assert shown.code == 2
    assert shown.out == ""
    assert "unknown job 'nosuchjob'" in shown.err
    assert first in shown.err and second in shown.err


def test_an_unknown_run_or_checkpoint_lists_the_job_s_own(team: Project) -> None:
    result = team.run(DONE)
    shown = log(team.workspace, "--run", "nosuchrun")
    assert shown.code == 2 and result.events[0].run_id in shown.err
    shown = log(team.workspace, "--checkpoint", "nosuchcheckpoint")
    assert shown.code == 2 and "unknown checkpoint 'nosuchcheckpoint'" in shown.err
    assert result.of("completeRun")[0].checkpoint.id in shown.err


def test_an_empty_workspace_says_where_it_looked_and_exits_2(tmp_path: Path) -> None:
    shown = log(tmp_path)
    assert shown.code == 2
    assert f"no jobs in {tmp_path / 'perstack' / 'jobs'} (there is no such folder)" in shown.err
    (tmp_path / "perstack" / "jobs").mkdir(parents=True)
    shown = log(tmp_path)
    assert shown.code == 2
    assert f"no jobs in {tmp_path / 'perstack' / 'jobs'}; point --workspace" in shown.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--step", "3-"], "--step '3-' is not a step filter"),
        (["--filter", "type == 1"], "--filter 'type == 1'"),
    ],
)
def test_a_bad_filter_exits_2_with_the_syntax(team: Project, args: list[str], message: str) -> None:
    team.run(DONE)
    shown = log(team.workspace, *args)
    assert shown.code == 2 and message in shown.err


def test_an_unknown_event_type_exits_2_naming_it_and_listing_the_types(team: Project) -> None:
    team.run([LOOK, *DONE])
    shown = log(team.workspace, "--type", "callTool")
    assert shown.code == 2 and shown.out == ""
    assert "--type 'callTool' is not an event type" in shown.err
    assert "did you mean 'callTools'?" in shown.err
    assert all(event_type in shown.err for event_type in EVENT_TYPES)


def test_a_negative_take_is_refused_by_the_parser(team: Project) -> None:
    with pytest.raises(SystemExit) as raised, contextlib.redirect_stderr(io.StringIO()):
        main(["log", "--workspace", str(team.workspace), "--take", "-1"])
    assert raised.value.code == 2


# --- picking events -------------------------------------------------------------------


def test_step_and_type_pick_events(team: Project) -> None:
    team.run([LOOK, LOOK, LOOK, *DONE])
    lines = log(team.workspace, "--type", "callTools", "--step", "2-3").event_lines()
    assert [line.split()[1:3] for line in lines] == [["2", "callTools"], ["3", "callTools"]]
    later = log(team.workspace, "--step", ">3", "--json").json()["events"]
    assert later and {e["stepNumber"] for e in later} == {4}


def test_filter_expressions_reach_into_tool_calls(team: Project) -> None:
    read = {"tool_use": [{"name": "readTextFile", "input": {"path": "x"}}]}
    team.run([LOOK, read, *DONE])
    events = log(
        team.workspace, "--filter", '.toolCalls[].toolName == "readTextFile"', "--json"
    ).json()["events"]
    assert [(e["type"], e["stepNumber"]) for e in events] == [("callTools", 2)]


def test_take_and_offset_page_through_matches_and_say_so(team: Project) -> None:
    team.run([LOOK, LOOK, LOOK, *DONE])
    shown = log(team.workspace, "--type", "startGeneration", "--take", "2", "--offset", "1")
    assert [line.split()[1] for line in shown.event_lines()] == ["2", "3"]
    assert "(showing 2 of 4 matched events)" in shown.lines
    assert "Use --take and --offset to page, or --take 0 for all" in shown.lines
    data = log(team.workspace, "--type", "startGeneration", "--take", "2", "--json").json()
    assert (data["totalEventsBeforeLimit"], data["matchedAfterPagination"]) == (4, 2)
    everything = log(team.workspace, "--take", "0", "--json").json()
    assert len(everything["events"]) == everything["totalEventsBeforeLimit"]
    past = log(team.workspace, "--type", "startGeneration", "--offset", "9")
    assert "(4 events match; this --offset is past them)" in past.lines


def test_context_shows_the_events_around_a_match(team: Project) -> None:
    team.run([LOOK, *DONE])
    everything = log(team.workspace, "--take", "0", "--json").json()["events"]
    shown = log(team.workspace, "--type", "continueToNextStep", "--context", "1", "--json")
    events = shown.json()["events"]
    index = [e["type"] for e in everything].index("continueToNextStep")
    assert events == everything[index - 1 : index + 2]


# --- jobs of several runs -------------------------------------------------------------


def test_a_two_level_delegation_shows_every_run_in_order(team: Project) -> None:
    result = team.run(TWO_LEVELS, expert="lead", query="Ask the helper")
    assert result.code == 0, result.stderr
    shown = log(team.workspace)
    assert "Runs: 3" in shown.lines
    lines = shown.event_lines()
    starts = [line.split()[2] for line in lines if " startRun " in line]
    assert starts == ["lead", "helper", "checker"]  # the expert column of a multi-run job
    assert [line.split()[1] for line in lines if " completeRun " in line] == ["3", "4", "5"]
    delegations = log(team.workspace, "--delegations").event_lines()
    assert [line.split()[2:4] for line in delegations] == [
        ["lead", "callDelegate"],
        ["helper", "callDelegate"],
    ]
    assert '→ checker("Is 2 + 3 = 5?")' in delegations[1]
    # A coordinator's result comes after everything its delegate did.
    helper_done = next(i for i, line in enumerate(lines) if '2 + 3 = 5 (checked)." (' in line)
    lead_result = next(i for i, line in enumerate(lines) if "✓ helper: " in line)
    assert helper_done < lead_result


def test_a_run_id_alone_shows_that_run_and_finds_its_job(team: Project) -> None:
    result = team.run(TWO_LEVELS, expert="lead")
    team.run(DONE, query="a later job")
    helper_run = next(e.run_id for e in result.of("startRun") if e.expert_key == "helper")
    data = log(team.workspace, "--run", helper_run, "--json").json()
    assert data["job"]["id"] == result.events[0].job_id
    assert "isLatestJob" not in data
    assert {e["runId"] for e in data["events"]} == {helper_run}
    assert {e["expertKey"] for e in data["events"] if "expertKey" in e} == {"helper"}


def test_summary_counts_every_matched_event_not_only_the_first_page(team: Project) -> None:
    team.run([LOOK] * 22 + DONE)
    everything = log(team.workspace, "--take", "0", "--json").json()["events"]
    assert len(everything) > DEFAULT_TAKE
    shown = log(team.workspace, "--summary")
    assert "  Steps: 23" in shown.lines
    assert "  Step range: 1 - 23" in shown.lines
    assert f"  Events: {len(everything)} (" in shown.out
    calls = [e for e in everything if e["type"] == "callTools"]
    paged = log(team.workspace, "--summary", "--type", "callTools", "--take", "2", "--offset", "1")
    assert f"  Events: {len(calls)} (0 errors, {len(calls)} tool events, " in paged.out
    assert "  Step range: 1 - 23" in paged.lines


def test_a_failing_delegate_shows_in_errors_with_context(team: Project) -> None:
    turns = [
        {"tool_use": [delegate("checker", "check")]},
        BAD_REQUEST,
        {"text": "The checker failed, so I stop here."},
    ]
    assert team.run(turns, expert="lead").code == 0
    errors = log(team.workspace, "--errors", "--json").json()["events"]
    assert [e["type"] for e in errors] == ["stopRunByError", "resolveToolResults"]
    assert errors[0]["expertKey"] == "checker" and errors[1]["expertKey"] == "lead"
    lines = log(team.workspace, "--errors").event_lines()
    assert "✗ checker: " in lines[1]
    with_context = log(team.workspace, "--errors", "--context", "1", "--json").json()
    assert len(with_context["events"]) > len(errors)
    assert with_context["summary"]["errorCount"] == 2


def test_summary_gives_status_runs_steps_tokens_duration_and_final_text(team: Project) -> None:
    result = team.run(TWO_LEVELS, expert="lead")
    shown = log(team.workspace, "--summary")
    text = shown.out
    assert "Events:" not in shown.lines
    assert "  Status: completed" in shown.lines and "  Steps: 5" in shown.lines
    assert "  Runs: 3" in shown.lines
    total = result.generation_usage().total_tokens
    assert f"{total} total" in text
    assert "  Duration: " in text
    assert "  Final text: The helper says 2 + 3 = 5." in shown.lines
    data = log(team.workspace, "--summary", "--json").json()["jobSummary"]
    assert data["status"] == "completed" and data["totalSteps"] == 5
    assert data["finalText"] == "The helper says 2 + 3 = 5."
    assert [r["expertKey"] for r in data["runs"]] == ["lead", "helper", "checker"]
    assert data["runs"][1]["delegatedBy"] == "lead"
    assert data["usage"]["totalTokens"] == total
    assert data["durationMs"] == data["finishedAt"] - data["startedAt"] >= 0


# --- ids of older jobs ----------------------------------------------------------------


def run_ids_starting_with(monkeypatch: pytest.MonkeyPatch, prefix: str) -> None:
    """Runs get ids sharing ``prefix``, as two random ids sometimes do."""
    real = runtime.ids.new_id
    monkeypatch.setattr("runtime.executor.new_id", lambda: prefix + real()[len(prefix) :])


def test_a_run_id_prefix_finds_its_job_among_older_jobs(team: Project) -> None:
    older = team.run([LOOK, *DONE], query="older")
    team.run(DONE, query="newer")
    run_id = older.events[0].run_id
    data = log(team.workspace, "--run", run_id[:6], "--json").json()
    assert data["job"]["id"] == older.events[0].job_id
    assert {e["runId"] for e in data["events"]} == {run_id}


def test_a_checkpoint_id_prefix_finds_its_job_among_older_jobs(team: Project) -> None:
    older = team.run([LOOK, *DONE], query="older")
    team.run(DONE, query="newer")
    checkpoint = older.of("continueToNextStep")[0].checkpoint
    data = log(team.workspace, "--checkpoint", checkpoint.id[:6], "--json").json()
    assert data["job"]["id"] == older.events[0].job_id
    assert data["checkpoint"]["id"] == checkpoint.id


def test_a_run_id_prefix_of_runs_in_two_jobs_is_ambiguous_and_lists_both(
    team: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_ids_starting_with(monkeypatch, "zz")
    first = team.run(DONE).events[0]
    second = team.run(DONE).events[0]
    shown = log(team.workspace, "--run", "zz")
    assert shown.code == 2 and shown.out == ""
    assert "run 'zz' is ambiguous" in shown.err
    assert f"{first.run_id} (job {first.job_id})" in shown.err
    assert f"{second.run_id} (job {second.job_id})" in shown.err


def test_an_unknown_run_or_checkpoint_is_in_no_job_of_the_workspace(team: Project) -> None:
    older = team.run(DONE).events[0]
    newer = team.run(DONE).events[0]
    jobs = team.workspace / "perstack" / "jobs"
    shown = log(team.workspace, "--run", "nosuchrun")
    assert shown.code == 2
    assert f"unknown run 'nosuchrun': it is in no job of {jobs}" in shown.err
    assert f"in job {newer.job_id}" not in shown.err
    assert newer.run_id in shown.err and older.run_id in shown.err
    shown = log(team.workspace, "--checkpoint", "nosuchcheckpoint")
    assert shown.code == 2
    assert f"unknown checkpoint 'nosuchcheckpoint': it is in no job of {jobs}" in shown.err


# --- checkpoints and messages ---------------------------------------------------------


def test_a_checkpoint_shows_its_header_and_messages(team: Project) -> None:
    result = team.run([LOOK, *DONE], query="look around")
    checkpoint = result.of("continueToNextStep")[0].checkpoint
    shown = log(team.workspace, "--checkpoint", checkpoint.id, "--messages")
    assert f"Checkpoint: {checkpoint.id}" in shown.lines
    assert "Step: 1" in shown.lines and "Status: proceeding" in shown.lines
    messages = shown.lines[shown.lines.index(f"Messages ({len(checkpoint.messages)}):") + 1 :]
    assert messages[0].startswith("  [instructionMessage] ")
    assert messages[1] == "  [userMessage] look around"
    assert messages[2] == '  [expertMessage] → listDirectory(path=".")'
    assert messages[3].startswith("  [toolMessage] ← listDirectory: ")
    data = log(team.workspace, "--checkpoint", checkpoint.id, "--json").json()
    assert data["checkpoint"]["id"] == checkpoint.id
    assert data["checkpoint"] == json.loads(checkpoint.to_json())


def test_messages_alone_show_the_last_checkpoint(team: Project) -> None:
    result = team.run([LOOK, *DONE])
    last = result.of("completeRun")[0].checkpoint
    shown = log(team.workspace, "--messages")
    assert f"Checkpoint: {last.id}" in shown.lines
    assert "  [expertMessage] All done." in shown.lines


# --- stops ----------------------------------------------------------------------------


def test_an_interactive_stop_and_its_answer_show_as_two_runs(team: Project) -> None:
    assert team.run([ASK], expert="asker").code == 4
    waiting = log(team.workspace, "--summary")
    assert "  Status: stoppedByInteractiveTool" in waiting.lines
    (stop,) = log(team.workspace, "--type", "stopRunByInteractiveTool").event_lines()
    assert 'waiting for an answer to askUser(question="Which file?")' in stop
    answered = team.run(
        [{"text": "You chose notes.txt."}], "--continue", "-i", expert="asker", query="notes.txt"
    )
    assert answered.code == 0, answered.stderr
    data = log(team.workspace, "--summary", "--json").json()
    assert data["jobSummary"]["status"] == "completed"
    assert len(data["jobSummary"]["runs"]) == 2
    assert data["jobSummary"]["finalText"] == "You chose notes.txt."


def test_a_run_stopped_by_max_steps_says_so(team: Project) -> None:
    assert team.run([LOOK, LOOK], "--max-steps", "2").code == 3
    (stop,) = log(team.workspace, "--type", "stopRunByExceededMaxSteps").event_lines()
    assert "maxSteps reached at step 2" in stop
    assert "Job: " in log(team.workspace).out
    assert "(stoppedByMaxSteps)" in log(team.workspace).lines[4]


# --- the reference's workspaces -------------------------------------------------------


def reference(name: str) -> Path:
    return SHARED / name / "perstack-cli" / "disk"


def test_a_reference_delegation_job_shows_three_runs_without_a_job_file() -> None:
    shown = log(reference("07-delegation"), "--summary")
    assert shown.code == 0
    assert "Job: faoy5ex2kj64y7zf7rcj7xf4 (completed)" in shown.lines
    assert "  Runs: 3" in shown.lines
    assert "  Final text: The helper reports that 2 + 3 = 5." in shown.lines
    lines = log(reference("07-delegation"), "--delegations").event_lines()
    assert ["callDelegate" in lines[0], "stopRunByDelegate" in lines[1]] == [True, True]
    assert '→ helper("What is 2 + 3?")' in lines[0]


def test_reference_events_come_out_as_stored() -> None:
    disk = reference("03-parallel-tool-calls")
    data = log(disk, "--json", "--take", "0").json()
    stored = sorted(stored_events(disk), key=lambda e: e["id"])
    assert sorted(data["events"], key=lambda e: e["id"]) == stored
    assert data["job"]["coordinatorExpertKey"] == "file-worker"
    calls = log(disk, "--type", "callTools").event_lines()[0]
    assert (
        'writeTextFile(path="alpha.txt", text="alpha\\n"), readTextFile(path="seed.txt")' in calls
    )


def test_a_reference_retry_is_an_error_event() -> None:
    shown = log(reference("05e-llm-stream-error-event"), "--errors")
    (line,) = shown.event_lines()
    assert line.split()[2] == "retry"


def test_a_reference_checkpoint_shows_its_messages() -> None:
    disk = reference("02-multi-step-files")
    checkpoint_id = log(disk, "--messages", "--json").json()["checkpoint"]["id"]
    shown = log(disk, "--checkpoint", checkpoint_id, "--messages")
    assert "Status: completed" in shown.lines
    assert (
        "  [userMessage] Create notes.txt with two lines, read it back, and list the "
        "directory." in shown.lines
    )


def test_perstack_storage_path_names_the_perstack_folder_when_no_workspace_is_given(
    team: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    team.run(DONE)
    monkeypatch.setenv("PERSTACK_STORAGE_PATH", str(team.workspace / "perstack"))
    monkeypatch.chdir(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["log", "--json"])

    assert code == 0, err.getvalue()
    assert json.loads(out.getvalue())["job"]["status"] == "completed"


def test_an_explicit_workspace_wins_over_perstack_storage_path(
    team: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    team.run(DONE)
    monkeypatch.setenv("PERSTACK_STORAGE_PATH", str(tmp_path / "elsewhere"))

    shown = log(team.workspace, "--json")

    assert shown.code == 0, shown.err
    assert json.loads(shown.out)["job"]["status"] == "completed"


def test_perstack_storage_path_without_jobs_says_which_folder_was_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PERSTACK_STORAGE_PATH", str(tmp_path / "empty"))
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(["log"])

    assert code == 2
    assert str(tmp_path / "empty" / "jobs") in err.getvalue()


# --- a real process -------------------------------------------------------------------


def test_perstack_log_runs_as_a_command(team: Project) -> None:
    team.run(DONE)
    process = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "log", "--workspace", str(team.workspace), "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert process.returncode == 0, process.stderr
    assert json.loads(process.stdout)["job"]["status"] == "completed"


def test_messages_of_a_run_show_that_run_s_last_checkpoint(team: Project) -> None:
    result = team.run(TWO_LEVELS, expert="lead")
    checker = next(e for e in result.of("completeRun") if e.expert_key == "checker")
    shown = log(team.workspace, "--run", checker.run_id, "--messages")
    assert f"Checkpoint: {checker.checkpoint.id}" in shown.lines
    assert "Delegated by: helper" in shown.lines
    assert "  [userMessage] Is 2 + 3 = 5?" in shown.lines
    assert "  [expertMessage] Yes, 5 is right." in shown.lines


def test_an_unknown_run_of_a_named_job_lists_that_job_s_runs(team: Project) -> None:
    result = team.run(TWO_LEVELS, expert="lead")
    job_id = result.events[0].job_id
    shown = log(team.workspace, "--job", job_id, "--run", "nosuchrun")
    assert shown.code == 2
    assert f"unknown run 'nosuchrun' in job {job_id}" in shown.err
    assert all(run_id in shown.err for run_id in {e.run_id for e in result.of("startRun")})


def test_a_checkpoint_that_cannot_be_understood_exits_1(team: Project) -> None:
    result = team.run(DONE)
    checkpoint = result.of("completeRun")[0].checkpoint
    path = next(team.workspace.glob(f"perstack/jobs/*/checkpoints/{checkpoint.id}.json"))
    data = json.loads(path.read_text())
    data["messages"] = [{"type": "expertMessage", "id": "m", "contents": "not a list"}]
    path.write_text(json.dumps(data))
    shown = log(team.workspace, "--checkpoint", checkpoint.id, "--messages")
    assert shown.code == 1
    assert f"cannot show {path}" in shown.err


def test_two_delegates_in_parallel_both_finish_before_the_coordinator_s_result(
    team: Project,
) -> None:
    turns = [
        {"tool_use": [delegate("helper", "part one"), delegate("checker", "part two")]},
        {"text": "answer one"},
        {"text": "answer two"},
        {"text": "Both done."},
    ]
    assert team.run(turns, expert="lead").code == 0
    lines = log(team.workspace).event_lines()
    completes = [i for i, line in enumerate(lines) if " completeRun " in line]
    lead_result = next(i for i, line in enumerate(lines) if " resolveToolResults " in line)
    assert len(completes) == 3
    assert completes[0] < lead_result and completes[1] < lead_result < completes[2]
    assert "✓ helper: " in lines[lead_result] and "✓ checker: " in lines[lead_result]
