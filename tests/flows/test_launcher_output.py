"""Following the container's stdout live, line by line, losing nothing."""

from __future__ import annotations

import json

import pytest

from flows.launcher import Limits
from tests.flows.conftest import script

pytestmark = pytest.mark.docker


def test_a_multibyte_character_split_across_writes_comes_out_intact(run_python):
    run = run_python(
        script(
            """
            import time
            line = json.dumps({'type': 'probe', 'text': 'caf\\u00e9 \\U0001f600 \\u65e5\\u672c'},
                              ensure_ascii=False).encode() + b'\\n'
            cut = line.index('\\U0001f600'.encode()) + 2  # inside the emoji's 4 bytes
            os.write(1, line[:cut])
            time.sleep(0.5)
            os.write(1, line[cut:])
            """
        )
    )
    assert run.probe()["text"] == "caf\u00e9 \U0001f600 \u65e5\u672c"


def test_a_300_kb_line_stays_whole(run_python):
    run = run_python(script("report(blob='\\u00e9' * 150_000 + 'end')\n"))
    blob = run.probe()["blob"]
    assert len(blob.encode()) == 300_003
    assert blob.endswith("end")


def test_20000_lines_from_a_container_that_exits_at_once_are_all_kept(run_python):
    run = run_python(
        script(
            """
            import sys
            sys.stdout.write(''.join(json.dumps({'type': 'probe', 'n': n}) + '\\n'
                                     for n in range(20_000)))
            """
        )
    )
    numbers = [e["n"] for e in run.container_events("probe")]
    assert numbers == list(range(20_000))
    assert run.result.stdout_lines == 20_000
    lines = run.result.captured.events.read_bytes().splitlines()
    assert sum(1 for line in lines if line.startswith(b'{"type": "probe"')) == 20_000


def test_stderr_is_kept_apart_from_the_events(run_python):
    run = run_python(script("import sys\nprint('a warning', file=sys.stderr)\nreport(ok=True)\n"))
    assert run.result.captured.stderr.read_text() == "a warning\n"
    assert b"a warning" not in run.result.captured.events.read_bytes()
    assert run.probe()["ok"] is True


def test_events_reach_the_callback_while_the_container_still_runs(
    docker_client, make_spec, tmp_path
):
    from flows.launcher import launch

    workspace = tmp_path / "live" / "alice"
    seen: list[dict] = []

    def on_event(event: dict) -> None:
        seen.append(event)
        if event.get("type") == "probe" and event.get("step") == "waiting":
            # The container waits for this file: it can only appear if we got the line live.
            (workspace / "ack").write_text("seen")

    code = script(
        """
        import time
        report(step='waiting')
        for _ in range(300):
            if os.path.exists('/workspace/ack'):
                report(step='acknowledged')
                break
            time.sleep(0.1)
        else:
            report(step='never acknowledged')
        """
    )
    spec = make_spec(
        workspace=workspace,
        entrypoint=("python3", "-c"),
        args=(code,),
        limits=Limits(wall_clock_seconds=60),
    )
    result = launch(spec, on_event=on_event, client=docker_client)
    steps = [e["step"] for e in seen if e.get("type") == "probe"]
    assert steps == ["waiting", "acknowledged"]
    written = [json.loads(line) for line in result.captured.events.read_text().splitlines()]
    assert [e["type"] for e in written] == [e["type"] for e in seen]
    statuses = [e["status"] for e in seen if e["type"] == "dockerContainerStatus"]
    assert statuses == ["starting", "running", "stopped"]
