"""Which events `perstack log` shows: step ranges, types, categories, a filter expression,
then a page (``--offset``, ``--take``) and ``--context`` events around each match.

The semantics are the reference's: filters combine with AND, paging applies to the
matches, and context events are taken from all events of the chosen scope after paging,
so a page never loses a match to its context.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from runtime.events import EVENT_TYPES
from runtime.log.errors import BadEventTypeError, BadFilterExpressionError, BadStepFilterError
from runtime.log.stored import LoggedEvent

# The reference shows this many events unless told otherwise; `--take 0` shows all.
DEFAULT_TAKE = 100

ERROR_EVENT_TYPES = frozenset({"stopRunByError", "retry"})
TOOL_EVENT_TYPES = frozenset({"callTools", "resolveToolResults", "callInteractiveTool"})
DELEGATION_EVENT_TYPES = frozenset({"callDelegate", "stopRunByDelegate"})


def has_failed_tool_result(event: LoggedEvent) -> bool:
    """A resolveToolResults with a result marked ``isError`` (ours marks them; the
    reference does not, so its failed tools show up only by their text)."""
    if event.type != "resolveToolResults":
        return False
    results = event.read().get("toolResults")
    if not isinstance(results, list):
        return False
    return any(isinstance(r, dict) and r.get("isError") is True for r in results)


def is_error_event(event: LoggedEvent) -> bool:
    return event.type in ERROR_EVENT_TYPES or has_failed_tool_result(event)


def is_tool_event(event: LoggedEvent) -> bool:
    return event.type in TOOL_EVENT_TYPES


def is_delegation_event(event: LoggedEvent) -> bool:
    return event.type in DELEGATION_EVENT_TYPES


def event_type(text: str) -> str:
    """``text``, when it names an event type this version defines (``--type``)."""
    if text not in EVENT_TYPES:
        raise BadEventTypeError(text, EVENT_TYPES)
    return text


# --- --step ---------------------------------------------------------------------------

_STEP_FORMS: tuple[tuple[re.Pattern[str], Callable[[int, int, int], bool]], ...] = (
    (re.compile(r"^(\d+)-(\d+)$"), lambda s, a, b: a <= s <= b),
    (re.compile(r"^>=(\d+)$"), lambda s, a, _: s >= a),
    (re.compile(r"^>(\d+)$"), lambda s, a, _: s > a),
    (re.compile(r"^<=(\d+)$"), lambda s, a, _: s <= a),
    (re.compile(r"^<(\d+)$"), lambda s, a, _: s < a),
    (re.compile(r"^(\d+)$"), lambda s, a, _: s == a),
)


@dataclass(frozen=True)
class StepFilter:
    text: str
    test: Callable[[int, int, int], bool]
    low: int
    high: int

    @classmethod
    def parse(cls, text: str) -> StepFilter:
        compact = text.strip().replace(" ", "")
        for pattern, test in _STEP_FORMS:
            match = pattern.match(compact)
            if match is not None:
                numbers = [int(g) for g in match.groups()]
                return cls(text, test, numbers[0], numbers[-1])
        raise BadStepFilterError(text)

    def matches(self, step: int | None) -> bool:
        return step is not None and self.test(step, self.low, self.high)


# --- --filter -------------------------------------------------------------------------

Operator = Literal["==", "!=", ">", ">=", "<", "<="]
_ORDERED = frozenset({">", ">=", "<", "<="})
# `.field =< 3`: operator characters that make no operator.
_OPERATOR_TYPO = re.compile(r"^\.[A-Za-z_][\w.\[\]]*\s*([=!<>]+)")
_EXPRESSION = re.compile(r"^\.([A-Za-z_][\w.\[\]]*)\s*(==|!=|>=|<=|>|<)\s*(.*)$")
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d*)\]")
_WILDCARD = "*"
# Fields an event file's name tells: a filter on them reads no file.
NAME_FIELDS = frozenset({"type", "timestamp", "runId", "stepNumber"})


def _path(text: str, expression: str) -> list[str | int]:
    parts: list[str | int] = []
    position = 0
    for match in _SEGMENT.finditer(text):
        between = text[position : match.start()]
        if between not in ("", "."):
            raise BadFilterExpressionError(expression, f"cannot read the field path {text!r}")
        name, index = match.groups()
        if name is not None:
            parts.append(name)
        else:
            parts.append(int(index) if index else _WILDCARD)
        position = match.end()
    if text[position:] not in ("", "."):
        raise BadFilterExpressionError(expression, f"cannot read the field path {text!r}")
    return parts


_OPERATOR_CHARS = "=!<>"


def _number(text: str) -> int | float | None:
    for kind in (int, float):
        try:
            value = kind(text)
        except ValueError:
            continue
        return value if math.isfinite(value) else None
    return None


def _literal(text: str, operator: str, expression: str) -> str | int | float | bool:
    """The value after the operator: a number, true/false or a quoted string. Anything else
    is refused (the reference takes a bare word as a string, so a mistyped operator or an
    unquoted word silently matched nothing)."""
    if text[0] in _OPERATOR_CHARS:
        written = operator + text[: len(text) - len(text.lstrip(_OPERATOR_CHARS))]
        raise BadFilterExpressionError(expression, f"{written!r} is not an operator")
    value: str | int | float | bool | None = _number(text)
    if text in ("true", "false"):
        value = text == "true"
    elif len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        value = text[1:-1]
    if operator in _ORDERED and not _is_number(value):
        raise BadFilterExpressionError(
            expression, f"{operator!r} compares numbers, and {text} is not a number"
        )
    if value is None:
        raise BadFilterExpressionError(
            expression,
            f"the value {text} is not a number, true/false or a quoted string "
            f'(to match text, quote it: "{text}")',
        )
    return value


def _same(actual: Any, expected: Any) -> bool:
    """Equality as JSON means it: true is not 1."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    return bool(actual == expected)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _compare(actual: Any, operator: Operator, expected: Any) -> bool:
    if operator == "==":
        return _same(actual, expected)
    if operator == "!=":
        return not _same(actual, expected)
    if not (_is_number(actual) and _is_number(expected)):
        return False
    ordered: dict[str, bool] = {
        ">": actual > expected,
        ">=": actual >= expected,
        "<": actual < expected,
        "<=": actual <= expected,
    }
    return ordered[operator]


_MISSING = object()


def _lookup(value: Any, path: Sequence[str | int]) -> Any:
    """The value at ``path``; a list of values past a ``[]``; _MISSING when absent."""
    for position, segment in enumerate(path):
        if segment == _WILDCARD:
            if not isinstance(value, list):
                return _MISSING
            rest = path[position + 1 :]
            found: list[Any] = []
            for item in value:
                inner = _lookup(item, rest)
                if inner is _MISSING:
                    continue
                if _WILDCARD in rest and isinstance(inner, list):
                    found.extend(inner)
                else:
                    found.append(inner)
            return found
        if isinstance(segment, int):
            if not isinstance(value, list) or segment >= len(value):
                return _MISSING
            value = value[segment]
        elif isinstance(value, dict) and segment in value:
            value = value[segment]
        else:
            return _MISSING
    return value


@dataclass(frozen=True)
class FilterExpression:
    """``.a.b[].c OP value``, evaluated on the event as stored (camelCase field names).
    A ``[]`` matches when any element does; ``[N]`` picks one element."""

    text: str
    path: tuple[str | int, ...]
    operator: Operator
    value: str | int | float | bool

    @classmethod
    def parse(cls, text: str) -> FilterExpression:
        match = _EXPRESSION.match(text.strip())
        if match is None:
            typo = _OPERATOR_TYPO.match(text.strip())
            if typo is not None:
                raise BadFilterExpressionError(text, f"{typo.group(1)!r} is not an operator")
            raise BadFilterExpressionError(text, "it does not start with .field and an operator")
        field, operator, raw = match.groups()
        if not raw.strip():
            raise BadFilterExpressionError(text, "the value after the operator is missing")
        op: Operator = operator  # type: ignore[assignment]  # the regex admits only these
        return cls(text, tuple(_path(field, text)), op, _literal(raw.strip(), op, text))

    @property
    def needs_body(self) -> bool:
        """False when the field is one the event file's name tells."""
        return len(self.path) != 1 or self.path[0] not in NAME_FIELDS

    def matches(self, data: dict[str, Any]) -> bool:
        actual = _lookup(data, self.path)
        if actual is _MISSING:
            return False
        if isinstance(actual, list):
            return any(_compare(a, self.operator, self.value) for a in actual)
        return _compare(actual, self.operator, self.value)


# --- all together ---------------------------------------------------------------------


@dataclass(frozen=True)
class FilterOptions:
    step: StepFilter | None = None
    type: str | None = None
    errors: bool = False
    tools: bool = False
    delegations: bool = False
    expression: FilterExpression | None = None
    take: int = DEFAULT_TAKE
    offset: int = 0
    context: int = 0

    def matches(self, event: LoggedEvent) -> bool:
        # Cheapest first: type and step come from the file name, the rest reads the file.
        return (
            (self.step is None or self.step.matches(event.step))
            and (self.type is None or event.type == self.type)
            and (not self.tools or is_tool_event(event))
            and (not self.delegations or is_delegation_event(event))
            and (not self.errors or is_error_event(event))
            and (self.expression is None or self._expression_matches(self.expression, event))
        )

    @staticmethod
    def _expression_matches(expression: FilterExpression, event: LoggedEvent) -> bool:
        data = event.read() if expression.needs_body else event.name_fields()
        return expression.matches(data)


@dataclass(frozen=True)
class FilterResult:
    events: list[LoggedEvent]
    """The page of matches plus their context, in order."""
    matches: list[LoggedEvent]
    """Every match, before paging (what --summary describes)."""
    shown: int
    """How many matches the page holds (context events not counted)."""

    @property
    def matched(self) -> int:
        """How many events matched before paging."""
        return len(self.matches)


def apply_filters(events: Sequence[LoggedEvent], options: FilterOptions) -> FilterResult:
    matches = [e for e in events if options.matches(e)]
    page = matches[options.offset :]
    if options.take > 0:
        page = page[: options.take]
    if options.context > 0:
        return FilterResult(_with_context(events, page, options.context), matches, len(page))
    return FilterResult(page, matches, len(page))


def _with_context(
    events: Sequence[LoggedEvent], page: Sequence[LoggedEvent], size: int
) -> list[LoggedEvent]:
    position = {id(e): i for i, e in enumerate(events)}
    keep: set[int] = set()
    for event in page:
        index = position[id(event)]
        keep.update(range(max(0, index - size), min(len(events), index + size + 1)))
    return [events[i] for i in sorted(keep)]
