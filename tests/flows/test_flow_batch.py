"""The batch flow under Prefect's test harness: one failing execution does not stop the
others, every execution is in the table, large queries travel by reference, and the
executions take slots of the Prefect concurrency limit."""

from __future__ import annotations

import pytest

from tests.flows import flow_harness as h

pytestmark = h.PREFECT_SOCKETS


@pytest.fixture(scope="module", autouse=True)
def harness(request: pytest.FixtureRequest) -> None:
    h.start(request.config)


async def test_a_batch_with_one_failing_execution_completes_the_rest(tmp_path):
    from prefect.client.orchestration import get_client

    from flows.batch import batch
    from flows.batch_input import BatchItem
    from flows.defaults import DEFAULT_CONCURRENCY

    large = "Triage the tickets. " + "x" * 20_000  # over the inline limit: by reference
    missing = tmp_path / "missing-query.txt"  # a query file that is not there: fails
    items = [
        BatchItem(user="alice", query="Triage the tickets"),
        BatchItem(user="bob", query=large),
        BatchItem(user="carol", query_file=missing),
    ]
    state = await batch(
        h.EXPERT,
        items=items,
        concurrency=2,
        concurrency_limit="test-batch",
        **h.options(tmp_path),
        return_state=True,
    )

    assert state.is_completed(), state.message
    summary = await state.aresult()
    assert (summary.completed, summary.failed) == (2, 1)
    outcomes = {row["user"]: row["outcome"] for row in summary.rows}
    assert outcomes == {"alice": "completed", "bob": "completed", "carol": "notRun"}
    carol = next(r for r in summary.rows if r["user"] == "carol")
    assert "missing-query.txt" in carol["error"]
    artifacts = await h.artifacts_of(state.state_details.flow_run_id)
    (table,) = [a for a in artifacts if a.key == "batch-support-analyst"]
    assert table.type == "table" and "carol" in str(table.data)
    children = {
        r.parameters["user"]: r for r in await h.child_flow_runs(state.state_details.flow_run_id)
    }
    assert children["bob"].parameters["query"] is None
    assert children["bob"].parameters["query_file"]
    assert children["carol"].state.is_failed() and children["alice"].state.is_completed()
    parent = await h.read_flow_run(state.state_details.flow_run_id)
    assert {"perstack", "expert:support-analyst"} <= set(parent.tags)
    async with get_client() as client:
        limit = await client.read_global_concurrency_limit_by_name("test-batch")
    # Created by this batch: its concurrency of 2 raised to the default, so that a trial
    # batch run at a low concurrency does not hold later ones to it.
    assert limit.limit == DEFAULT_CONCURRENCY


def test_batch_files_in_jsonl_and_csv_give_the_same_items(tmp_path):
    from flows.batch_input import read_items

    (tmp_path / "q.txt").write_text("from a file")
    (tmp_path / "items.jsonl").write_text(
        '{"user": "alice", "query": "hello"}\n\n{"user": "bob", "query_file": "q.txt"}\n'
    )
    (tmp_path / "items.csv").write_text("user,query,query_file\nalice,hello,\nbob,,q.txt\n")

    assert read_items(tmp_path / "items.jsonl") == read_items(tmp_path / "items.csv")
    bob = read_items(tmp_path / "items.csv")[1]
    assert bob.query_file == (tmp_path / "q.txt").resolve()


def test_a_batch_file_row_without_a_query_is_refused_with_its_line(tmp_path):
    from flows.batch_input import read_items
    from flows.errors import BatchInputError

    (tmp_path / "items.jsonl").write_text('{"user": "alice", "query": "a"}\n{"user": "bob"}\n')

    with pytest.raises(BatchInputError, match=r"items.jsonl:2: .*exactly one of query"):
        read_items(tmp_path / "items.jsonl")


async def test_a_batch_leaves_the_operators_concurrency_limit_as_it_is(tmp_path):
    # Regression: every batch set the global limit to its own `concurrency`, undoing
    # `deployments.setup --concurrency N` (and each other's setting).
    from prefect.client.orchestration import get_client

    from flows.batch import batch
    from flows.batch_input import BatchItem

    async with get_client() as client:
        await client.upsert_global_concurrency_limit_by_name("operators-limit", 1)
    state = await batch(
        h.EXPERT,
        items=[BatchItem(user="gina", query="Triage the tickets")],
        concurrency=3,
        concurrency_limit="operators-limit",
        **h.options(tmp_path),
        return_state=True,
    )

    assert state.is_completed(), state.message
    async with get_client() as client:
        limit = await client.read_global_concurrency_limit_by_name("operators-limit")
    assert limit.limit == 1
    logs = await h.flow_run_logs(state.state_details.flow_run_id)
    assert any("at most 1 at a time (the concurrency limit 'operators-limit'" in x for x in logs)
