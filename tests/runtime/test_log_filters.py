"""Which events `perstack log` keeps: --step, --filter, categories, paging and context,
on the events of real jobs."""

import shutil
from pathlib import Path

import pytest

from runtime.events import EVENT_TYPES
from runtime.log.errors import BadEventTypeError, BadFilterExpressionError, BadStepFilterError
from runtime.log.filters import (
    FilterExpression,
    FilterOptions,
    StepFilter,
    apply_filters,
    event_type,
)
from runtime.log.reader import WorkspaceLog
from runtime.log.stored import LoggedEvent
from tests.reference import RECORDINGS

SHARED = RECORDINGS


def events_of(name: str) -> list[LoggedEvent]:
    store = WorkspaceLog(SHARED / name / "perstack-cli" / "disk")
    return store.load(store.latest_job_id()).events


@pytest.fixture(scope="module")
def files_job() -> list[LoggedEvent]:
    return events_of("02-multi-step-files")


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        ("3", [3], [2, 4]),
        (" 3 ", [3], [2]),
        (">3", [4, 9], [3]),
        (">=3", [3, 4], [2]),
        ("<3", [1, 2], [3]),
        ("<=3", [3], [4]),
        ("2-5", [2, 3, 5], [1, 6]),
        ("2 - 5", [2, 5], [6]),
    ],
)
def test_step_filters_take_the_reference_forms(
    text: str, inside: list[int], outside: list[int]
) -> None:
    step = StepFilter.parse(text)
    assert all(step.matches(s) for s in inside)
    assert not any(step.matches(s) for s in outside)
    assert not step.matches(None)  # runtime events have no step


@pytest.mark.parametrize("text", ["", "x", "3-", "-3", "=3", "3..5", "three"])
def test_a_bad_step_filter_says_which_forms_exist(text: str) -> None:
    with pytest.raises(BadStepFilterError, match="N-M"):
        StepFilter.parse(text)


def test_a_step_range_keeps_only_events_of_those_steps(files_job: list[LoggedEvent]) -> None:
    kept = apply_filters(files_job, FilterOptions(step=StepFilter.parse("2-3"))).events
    assert kept and {e.step for e in kept} == {2, 3}


def test_filter_expressions_compare_stored_fields(files_job: list[LoggedEvent]) -> None:
    def kept(expression: str) -> list[LoggedEvent]:
        options = FilterOptions(expression=FilterExpression.parse(expression), take=0)
        return apply_filters(files_job, options).events

    assert [e.type for e in kept('.type == "completeRun"')] == ["completeRun"]
    assert {e.step for e in kept(".stepNumber > 3")} == {4}
    assert {e.step for e in kept(".stepNumber <= 1")} == {1}
    assert len(kept(".stepNumber != 1")) == len([e for e in files_job if e.step != 1])
    reads = kept('.toolCalls[].toolName == "readTextFile"')
    assert [e.type for e in reads] == ["callTools"]
    assert kept(".toolCalls[0].toolName == 'writeTextFile'")[0].step == 1
    assert len(kept('.toolResults[].result[].type == "textPart"')) == 3
    assert kept(".stepNumber == true") == []  # JSON true is not 1
    assert kept('.noSuchField == "x"') == []


@pytest.mark.parametrize(
    "text", ["type == 1", ".type", ".type ==", ".type ~ 1", ".a[x] == 1", ".a..b] == 1"]
)
def test_a_bad_filter_expression_shows_the_syntax(text: str) -> None:
    with pytest.raises(BadFilterExpressionError, match="OP"):
        FilterExpression.parse(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (".stepNumber >> 5", "'>>' is not an operator"),
        (".stepNumber => 5", "'=>' is not an operator"),
        (".stepNumber > five", "'>' compares numbers, and five is not a number"),
        ('.stepNumber > "3"', "'>' compares numbers, and \"3\" is not a number"),
        (
            ".type == completeRun",
            "the value completeRun is not a number, true/false or a "
            'quoted string (to match text, quote it: "completeRun")',
        ),
    ],
)
def test_a_filter_value_that_is_not_a_value_is_refused_saying_why(text: str, reason: str) -> None:
    # Regression (newuser #5): these matched nothing, silently, with exit 0.
    with pytest.raises(BadFilterExpressionError) as caught:
        FilterExpression.parse(text)
    assert reason in str(caught.value)


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_every_event_type_the_runtime_defines_is_a_valid_type(name: str) -> None:
    assert event_type(name) == name


@pytest.mark.parametrize(("text", "close"), [("callTool", "callTools"), ("calltools", "callTools")])
def test_a_misspelt_event_type_is_refused_with_the_closest_type(text: str, close: str) -> None:
    with pytest.raises(BadEventTypeError, match=f"did you mean '{close}'"):
        event_type(text)


def test_categories_pick_the_reference_event_types() -> None:
    delegation = events_of("07-delegation")
    tools = apply_filters(delegation, FilterOptions(tools=True)).events
    assert {e.type for e in tools} == {"callTools"}
    delegations = apply_filters(delegation, FilterOptions(delegations=True)).events
    assert [e.type for e in delegations] == ["callDelegate", "stopRunByDelegate"]
    errors = apply_filters(events_of("05e-llm-stream-error-event"), FilterOptions(errors=True))
    assert [e.type for e in errors.events] == ["retry"]


def test_filters_combine_with_and(files_job: list[LoggedEvent]) -> None:
    options = FilterOptions(tools=True, step=StepFilter.parse("2"), type="callTools")
    kept = apply_filters(files_job, options).events
    assert [(e.type, e.step) for e in kept] == [("callTools", 2)]


def test_paging_counts_the_matches_before_and_on_the_page(files_job: list[LoggedEvent]) -> None:
    everything = apply_filters(files_job, FilterOptions(take=0))
    assert everything.matched == everything.shown == len(files_job)
    page = apply_filters(files_job, FilterOptions(offset=3, take=4))
    assert page.events == files_job[3:7]
    assert (page.matched, page.shown) == (len(files_job), 4)
    past = apply_filters(files_job, FilterOptions(offset=len(files_job)))
    assert past.events == [] and past.matched == len(files_job)
    assert page.matches == past.matches == files_job


def test_the_default_page_is_a_hundred_events() -> None:
    many = events_of("02-multi-step-files") * 30
    assert len(apply_filters(many, FilterOptions()).events) == 100


def test_context_adds_neighbours_of_each_match_in_order(files_job: list[LoggedEvent]) -> None:
    options = FilterOptions(type="resolveToolResults", context=1)
    result = apply_filters(files_job, options)
    matches = [i for i, e in enumerate(files_job) if e.type == "resolveToolResults"]
    expected = sorted({j for i in matches for j in (i - 1, i, i + 1)})
    assert result.events == [files_job[j] for j in expected]
    assert result.shown == len(matches) == 3


def test_context_is_added_after_paging_so_the_page_keeps_its_matches(
    files_job: list[LoggedEvent],
) -> None:
    options = FilterOptions(type="callTools", take=1, offset=1, context=2)
    result = apply_filters(files_job, options)
    second_call = [e for e in files_job if e.type == "callTools"][1]
    index = files_job.index(second_call)
    assert result.events == files_job[index - 2 : index + 3]
    assert (result.matched, result.shown) == (4, 1)


def test_a_filter_on_what_the_file_name_tells_reads_no_file(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    shutil.copytree(SHARED / "02-multi-step-files" / "perstack-cli" / "disk", disk)
    store = WorkspaceLog(disk)
    events = store.load(store.latest_job_id()).events
    for path in disk.glob("perstack/jobs/*/runs/*/event-*.json"):
        path.write_text("{not json")
    for text in (".stepNumber >= 2", '.type == "callTools"', ".timestamp > 0"):
        options = FilterOptions(expression=FilterExpression.parse(text), take=0)
        assert apply_filters(events, options).events
    assert not any(e.unreadable for e in events)
    options = FilterOptions(expression=FilterExpression.parse('.toolCalls[].toolName == "x"'))
    apply_filters(events, options)
    assert all(e.unreadable for e in events)
