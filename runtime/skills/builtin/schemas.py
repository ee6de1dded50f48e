"""What the model is told about each built-in tool: names, argument names, required lists
and defaults as the reference's ``@perstack/base`` declares them; the wording is ours."""

from __future__ import annotations

from typing import Any

from runtime.skills.builtin.exec import DEFAULT_TIMEOUT_MS

_DRAFT_07 = "http://json-schema.org/draft-07/schema#"


def _schema(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    schema["$schema"] = _DRAFT_07
    return schema


def _string(description: str | None = None) -> dict[str, Any]:
    return {"description": description, "type": "string"} if description else {"type": "string"}


_PATH = _string()

# (name, description, input schema), in the reference's order.
TOOLS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "attemptCompletion",
        "Call this when you believe the task is finished.\n"
        "- If every todo is completed (or there are none), it returns an empty object and "
        "the run ends.\n"
        "- If some todos are still open, it returns them and the run goes on: finish them, "
        "mark them with todo, then call this again.\n"
        "- Use clearTodo to drop the whole list instead.",
        _schema({}),
    ),
    (
        "todo",
        "Keep a checklist for the current task.\n"
        "- newTodos adds items; each gets a numeric id.\n"
        "- completedTodos marks items done by id.\n"
        "- Every call returns the whole list; call it with no arguments to just read it.\n"
        "The list survives between calls for the rest of the run.",
        _schema(
            {
                "newTodos": {
                    "description": "Titles of items to add",
                    "type": "array",
                    "items": {"type": "string"},
                },
                "completedTodos": {
                    "description": "Ids of items that are done",
                    "type": "array",
                    "items": {"type": "number"},
                },
            }
        ),
    ),
    (
        "clearTodo",
        "Empty the checklist kept by todo and restart its ids at 0. Returns the empty list.",
        _schema({}),
    ),
    (
        "exec",
        "Run a program in the workspace and get what it printed.\n"
        "- command is the program (looked up on PATH), args its arguments: no shell is "
        'involved, so to use pipes or globs run e.g. command "sh" with args ["-c", "..."].\n'
        '- cwd is a directory inside the workspace ("." for the root).\n'
        "- The command sees a minimal environment (PATH, HOME, locale); anything else it "
        "needs must be given in env.\n"
        "- stdout / stderr choose which streams are returned; long output is cut and "
        "marked as truncated.\n"
        "- The command is killed after timeout milliseconds; do not start servers or "
        "commands that wait for input or run forever (tail -f).",
        _schema(
            {
                "command": _string("Program to run"),
                "args": {
                    "description": "Arguments, one string each",
                    "type": "array",
                    "items": {"type": "string"},
                },
                "env": {
                    "description": "Extra environment variables for the command",
                    "type": "object",
                    "propertyNames": {"type": "string"},
                    "additionalProperties": {"type": "string"},
                },
                "cwd": _string("Directory to run in, relative to the workspace"),
                "stdout": {"description": "Return standard output", "type": "boolean"},
                "stderr": {"description": "Return standard error", "type": "boolean"},
                "timeout": {
                    "description": f"Limit in milliseconds (default {DEFAULT_TIMEOUT_MS})",
                    "default": DEFAULT_TIMEOUT_MS,
                    "type": "number",
                },
            },
            ["command", "args", "env", "cwd", "stdout", "stderr"],
        ),
    ),
    (
        "getFileInfo",
        "Describe one file or directory: type, size (raw and readable), MIME type guessed "
        "from the extension, created/modified/accessed times and permission bits.",
        _schema({"path": _PATH}, ["path"]),
    ),
    (
        "healthCheck",
        "Report whether the runtime's built-in tools answer: status, workspace path, uptime "
        "and memory use. Touches no file.",
        _schema({}),
    ),
    (
        "readTextFile",
        "Read a UTF-8 text file from the workspace. Returns JSON with the path, the content "
        "and the line range.\n"
        "- Lines are counted from 0; from is the first line returned, to the line after the "
        "last one. Omit both to read everything.\n"
        "- Binary or very large files are refused.",
        _schema(
            {
                "path": _PATH,
                "from": {"description": "First line to return (0-based)", "type": "number"},
                "to": {"description": "Line to stop before", "type": "number"},
            },
            ["path"],
        ),
    ),
    (
        "writeTextFile",
        "Create a text file, or replace an existing one completely, with the given UTF-8 "
        "text. Missing parent directories are created.",
        _schema(
            {
                "path": _string("File to write, relative to the workspace"),
                "text": _string("Full new content of the file"),
            },
            ["path", "text"],
        ),
    ),
    (
        "appendTextFile",
        "Add text at the end of a file that already exists, leaving its content as it is. "
        "Include a leading newline in text if the file does not end with one.",
        _schema(
            {
                "path": _string("Existing file to extend"),
                "text": _string("Text to add at the end"),
            },
            ["path", "text"],
        ),
    ),
    (
        "editTextFile",
        "Change part of an existing text file: the first occurrence of oldText, matched "
        "exactly (CRLF line ends count as LF), becomes newText. Fails if oldText is not "
        "found. Keep each edit small; to add at the end use appendTextFile.",
        _schema(
            {
                "path": _string("File to change"),
                "newText": _string("Replacement text"),
                "oldText": _string("Exact text to replace"),
            },
            ["path", "newText", "oldText"],
        ),
    ),
    (
        "moveFile",
        "Rename or move a file or directory inside the workspace. The destination must not "
        "exist yet; its parent directories are created when missing.",
        _schema({"source": _string(), "destination": _string()}, ["source", "destination"]),
    ),
    (
        "deleteFile",
        "Delete one file (or symbolic link) from the workspace. Directories need deleteDirectory.",
        _schema({"path": _PATH}, ["path"]),
    ),
    (
        "listDirectory",
        "List the entries of one directory (not its subdirectories), sorted by name, each "
        'with its type, size and modification time. Use "." for the workspace root.',
        _schema({"path": _PATH}, ["path"]),
    ),
    (
        "createDirectory",
        "Create a directory, and any missing parents. Fails if it already exists.",
        _schema({"path": _PATH}, ["path"]),
    ),
    (
        "deleteDirectory",
        "Delete a directory. It must be empty unless recursive is true, which deletes it "
        "with everything inside.",
        _schema(
            {
                "path": _PATH,
                "recursive": {
                    "description": "Also delete the contents (needed when not empty)",
                    "type": "boolean",
                },
            },
            ["path"],
        ),
    ),
]

TOOL_NAMES = tuple(name for name, _, _ in TOOLS)
