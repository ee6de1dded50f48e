"""The todo list of one run: the todo, clearTodo and attemptCompletion tools.

The list lives in the skill instance, so each run (each ``BuiltinSkill``) has its own.
Ids are numbers counted from 0, as in the reference; clearTodo starts them again at 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pydantic import Field

from runtime.skills.builtin.files import Args
from runtime.skills.builtin.outcomes import ToolFailure


@dataclass
class TodoItem:
    id: int
    title: str
    completed: bool = False


class TodoArgs(Args):
    newTodos: list[str] | None = Field(default=None)  # noqa: N815 - the wire name
    completedTodos: list[int | float] | None = Field(default=None)  # noqa: N815


class TodoList:
    def __init__(self) -> None:
        self._items: list[TodoItem] = []
        self._next_id = 0

    def update(self, args: TodoArgs) -> dict[str, Any]:
        """Add ``newTodos``, then mark ``completedTodos`` done. Unknown ids are refused
        before anything changes, so a call either applies whole or not at all."""
        known = {item.id for item in self._items}
        known.update(range(self._next_id, self._next_id + len(args.newTodos or [])))
        unknown = [i for i in args.completedTodos or [] if i not in known]
        if unknown:
            raise ToolFailure(
                f"Unknown todo ids {unknown}; the ids are {sorted(known)}. "
                "Call todo without arguments to see the list.",
                kind="InvalidArguments",
            )
        for title in args.newTodos or []:
            self._items.append(TodoItem(id=self._next_id, title=title))
            self._next_id += 1
        done = set(args.completedTodos or [])
        for item in self._items:
            if item.id in done:
                item.completed = True
        return self.snapshot()

    def clear(self) -> dict[str, Any]:
        self._items = []
        self._next_id = 0
        return self.snapshot()

    def snapshot(self) -> dict[str, Any]:
        return {"todos": [asdict(item) for item in self._items]}

    def open_items(self) -> list[TodoItem]:
        return [TodoItem(**asdict(item)) for item in self._items if not item.completed]

    def attempt_completion(self) -> dict[str, Any]:
        """``{}`` when nothing is open, else the open todos (the run must go on)."""
        remaining = self.open_items()
        if remaining:
            return {"remainingTodos": [asdict(item) for item in remaining]}
        return {}
