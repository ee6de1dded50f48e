"""``BuiltinSkill``: the `@perstack/base` tools, served in-process.

Completion and todos: ``attemptCompletion`` answers ``{}`` when no todo is open and
``{"remainingTodos": [...]}`` otherwise, as the reference does (neither is an error
result). The agent loop does not need to parse that text: right after an
``attemptCompletion`` call it asks ``skill.has_open_todos()`` (or ``open_todos()`` for the
items); False means the run may complete, True means the result goes back to the model
and the run continues.
"""

from __future__ import annotations

import copy
import logging
import os
import resource
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from runtime.skills.builtin import entries, files
from runtime.skills.builtin.exec import DEFAULT_OUTPUT_LIMIT_BYTES, ExecArgs, run_exec
from runtime.skills.builtin.exec import minimal_environment as _minimal_environment
from runtime.skills.builtin.outcomes import (
    ToolFailure,
    failure,
    invalid_arguments,
    success,
)
from runtime.skills.builtin.paths import Workspace, os_failure
from runtime.skills.builtin.schemas import TOOL_NAMES, TOOLS
from runtime.skills.builtin.todo import TodoArgs, TodoItem, TodoList
from runtime.skills.skill import ToolDefinition, ToolOutcome

logger = logging.getLogger(__name__)

BUILTIN_SKILL_NAME = "@perstack/base"

_Handler = Callable[[Any], Awaitable[dict[str, Any]]]


class _NoArgs(BaseModel):
    pass


class BuiltinSkill:
    """The built-in tool set, confined to ``workspace``.

    ``pick`` keeps only the named tools, ``omit`` drops the named ones (both as in
    perstack.toml); unknown names are logged and ignored. ``environ`` is where ``exec``
    takes its few passed-through variables from (default: ``os.environ``).
    """

    def __init__(
        self,
        workspace: str | os.PathLike[str],
        *,
        pick: Collection[str] | None = None,
        omit: Collection[str] | None = None,
        name: str = BUILTIN_SKILL_NAME,
        environ: Mapping[str, str] | None = None,
        exec_output_limit: int = DEFAULT_OUTPUT_LIMIT_BYTES,
    ) -> None:
        self._name = name
        self._workspace = Workspace(workspace)
        self._exec_env = _minimal_environment(os.environ if environ is None else environ)
        self._exec_output_limit = exec_output_limit
        self._todos = TodoList()
        self._started_at = time.monotonic()
        self._enabled = _select(pick, omit)
        self._definitions = [
            # A copy each, so that a caller adjusting a schema cannot change another run's.
            ToolDefinition(
                skill_name=name, name=tool, description=text, input_schema=copy.deepcopy(schema)
            )
            for tool, text, schema in TOOLS
            if tool in self._enabled
        ]
        self._handlers = self._make_handlers()

    @property
    def name(self) -> str:
        return self._name

    @property
    def workspace(self) -> Path:
        return self._workspace.root

    async def start(self) -> None:
        """Nothing to start: the tools run in this process."""

    def tool_definitions(self) -> list[ToolDefinition]:
        return list(self._definitions)

    def open_todos(self) -> list[TodoItem]:
        """The todos not yet completed (copies). Empty: ``attemptCompletion`` may end the run."""
        return self._todos.open_items()

    def has_open_todos(self) -> bool:
        """True while a todo is open: an ``attemptCompletion`` now must not end the run."""
        return bool(self._todos.open_items())

    async def call_tool(self, tool_name: str, args: dict[str, Any]) -> ToolOutcome:
        if tool_name not in self._enabled:
            offered = ", ".join(sorted(self._enabled))
            return failure(
                ToolFailure(
                    f"Tool {tool_name!r} is not available here. Available tools: {offered}.",
                    kind="UnknownTool",
                )
            )
        model, handler = self._handlers[tool_name]
        started = time.perf_counter()
        try:
            parsed = model.model_validate(args if args is not None else {})
            outcome = success(await handler(parsed))
        except ValidationError as error:
            outcome = failure(invalid_arguments(tool_name, error))
        except ToolFailure as error:
            outcome = failure(error)
        except OSError as error:
            where = args.get("path", tool_name) if isinstance(args, dict) else tool_name
            outcome = failure(os_failure(error, str(where)))
        logger.debug(
            "tool %s: %s in %.1f ms",
            tool_name,
            "error" if outcome.is_error else "ok",
            (time.perf_counter() - started) * 1000,
        )
        return outcome

    async def close(self) -> None:
        """Nothing to release: every exec call cleans up after itself."""

    def _make_handlers(self) -> dict[str, tuple[type[BaseModel], _Handler]]:
        ws = self._workspace

        def sync(function: Callable[[Workspace, Any], dict[str, Any]]) -> _Handler:
            async def handler(parsed: Any) -> dict[str, Any]:
                return function(ws, parsed)

            return handler

        async def exec_tool(parsed: ExecArgs) -> dict[str, Any]:
            return await run_exec(ws, parsed, self._exec_env, self._exec_output_limit)

        async def todo(parsed: TodoArgs) -> dict[str, Any]:
            return self._todos.update(parsed)

        async def clear_todo(_: _NoArgs) -> dict[str, Any]:
            return self._todos.clear()

        async def attempt_completion(_: _NoArgs) -> dict[str, Any]:
            return self._todos.attempt_completion()

        async def health_check(_: _NoArgs) -> dict[str, Any]:
            return self._health()

        return {
            "attemptCompletion": (_NoArgs, attempt_completion),
            "todo": (TodoArgs, todo),
            "clearTodo": (_NoArgs, clear_todo),
            "exec": (ExecArgs, exec_tool),
            "getFileInfo": (entries.PathArgs, sync(entries.get_file_info)),
            "healthCheck": (_NoArgs, health_check),
            "readTextFile": (files.ReadTextFileArgs, sync(files.read_text_file)),
            "writeTextFile": (files.WriteTextFileArgs, sync(files.write_text_file)),
            "appendTextFile": (files.WriteTextFileArgs, sync(files.append_text_file)),
            "editTextFile": (files.EditTextFileArgs, sync(files.edit_text_file)),
            "moveFile": (entries.MoveFileArgs, sync(entries.move_file)),
            "deleteFile": (entries.PathArgs, sync(entries.delete_file)),
            "listDirectory": (entries.PathArgs, sync(entries.list_directory)),
            "createDirectory": (entries.PathArgs, sync(entries.create_directory)),
            "deleteDirectory": (entries.DeleteDirectoryArgs, sync(entries.delete_directory)),
        }

    def _health(self) -> dict[str, Any]:
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {
            "status": "ok",
            "workspace": str(self._workspace.root),
            "uptime": f"{int(time.monotonic() - self._started_at)}s",
            "memory": {"rss": f"{_current_rss_mib()}MB", "peakRss": f"{peak_kib // 1024}MB"},
            "pid": os.getpid(),
        }


def _select(pick: Collection[str] | None, omit: Collection[str] | None) -> frozenset[str]:
    known = set(TOOL_NAMES)
    for label, names in (("pick", pick), ("omit", omit)):
        unknown = sorted(set(names or ()) - known)
        if unknown:
            logger.warning(
                "%s: %s names unknown tools %s; ignored", BUILTIN_SKILL_NAME, label, unknown
            )
    chosen = known & set(pick) if pick else known
    return frozenset(chosen - set(omit or ()))


def _current_rss_mib() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    return pages * os.sysconf("SC_PAGE_SIZE") // (1024 * 1024)
