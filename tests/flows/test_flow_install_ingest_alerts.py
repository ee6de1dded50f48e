"""The install and ingest flows and the failure alerts, under Prefect's test harness."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.flows import flow_harness as h

pytestmark = h.PREFECT_SOCKETS


@pytest.fixture(scope="module", autouse=True)
def harness(request: pytest.FixtureRequest) -> None:
    h.start(request.config)


async def test_install_writes_the_lock_and_a_table_of_every_tool(tmp_path):
    from flows.install import install_flow

    shutil.copyfile(h.EXAMPLE / "perstack.toml", tmp_path / "perstack.toml")
    state = await install_flow(tmp_path / "perstack.toml", return_state=True)

    assert state.is_completed(), state.message
    assert await state.aresult() == tmp_path / "perstack.lock"
    (table,) = await h.artifacts_of(state.state_details.flow_run_id)
    rows = json.loads(table.data)
    assert {(r["skill"], r["tool"]) for r in rows} >= {
        ("time", "get_current_time"),
        ("@perstack/base", "readTextFile"),
    }


async def test_a_skill_that_cannot_start_fails_install_with_its_message(tmp_path):
    from flows.install import install_flow

    config = tmp_path / "perstack.toml"
    config.write_text(
        '[experts."broken"]\ninstruction = "x"\n'
        '[experts."broken".skills."missing"]\ntype = "mcpStdioSkill"\n'
        'command = "no-such-mcp-server-here"\n'
    )
    state = await install_flow(config, return_state=True)

    assert state.is_failed()
    assert "no-such-mcp-server-here" in state.message
    assert not (tmp_path / "perstack.lock").exists()


async def test_ingest_reads_a_workspace_into_the_dataset(tmp_path):
    from flows.ingest import ingest_flow
    from flows.run_expert import run_expert

    result = await run_expert(h.EXPERT, "Triage", user="dora", **h.options(tmp_path, ingest=False))
    rows = await ingest_flow([Path(result.workspace)], tmp_path / "audit", "dora")

    assert rows["events"] > 0 and rows["checkpoints"] > 0


async def test_the_scheduled_ingest_labels_each_users_runs_with_its_user(tmp_path, monkeypatch):
    # Regression: `ingest-hourly` ingested the workspaces root with no user, and runs
    # that only it sees (cancelled or crashed ones skip the ingest after the run) had none.
    import duckdb

    from flows.ingest import ingest_flow
    from flows.run_expert import run_expert

    monkeypatch.setenv("PERSTACK_DATA", str(tmp_path / "data"))
    for user in ("fay", "gus"):
        options = h.options(tmp_path, ingest=False, workspaces=tmp_path / "data" / "workspaces")
        await run_expert(h.EXPERT, "Triage", user=user, **options)

    state = await ingest_flow(dataset=tmp_path / "audit", return_state=True)

    assert state.is_completed(), state.message
    assert "perstack" in (await h.read_flow_run(state.state_details.flow_run_id)).tags
    events = f"read_parquet('{tmp_path}/audit/events/**/*.parquet')"
    users = duckdb.sql(f"select distinct user_name from {events} order by 1").fetchall()
    assert users == [("fay",), ("gus",)]


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def test_a_failed_run_notifies_the_alert_block(tmp_path, webhook, monkeypatch):
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    from flows.alerts import ALERT_BLOCK_ENV
    from flows.run_expert import run_expert

    block = CustomWebhookNotificationBlock(
        name="test-alerts", url=webhook, json_data={"subject": "{{subject}}", "text": "{{body}}"}
    )
    await block.save("test-alerts", overwrite=True)
    monkeypatch.setenv(ALERT_BLOCK_ENV, "custom-webhook/test-alerts")
    _Hook.received.clear()
    h.broken_workspace(tmp_path / "workspaces", "erin")

    state = await run_expert(
        h.EXPERT, "Triage", user="erin", **h.options(tmp_path), return_state=True
    )

    assert state.is_failed()
    (alert,) = _Hook.received
    assert "support-analyst for erin" in alert["subject"] and "Failed" in alert["subject"]
    assert "exited with code" in alert["text"]
