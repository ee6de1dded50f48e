"""Run `perstack` in-process or as a child process against a throwaway project."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.checkpoint import Usage
from runtime.cli import main
from runtime.events import Event, parse_event

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    code: int
    events: list[Event]
    stderr: str

    def types(self) -> list[str]:
        return [e.type for e in self.events]

    def of(self, event_type: str) -> list[Any]:
        return [e for e in self.events if e.type == event_type]

    def generation_usage(self) -> Usage:
        """The sum over every generation: callTools, completeRun and retry each carry one
        generation's usage (callDelegate and callInteractiveTool repeat callTools')."""
        total = Usage()
        for event in self.events:
            if event.type in ("callTools", "completeRun", "retry"):
                total = total + event.usage  # type: ignore[union-attr]
        return total


@dataclass
class Project:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "perstack.toml"

    @property
    def workspace(self) -> Path:
        return self.root / "workspace"

    def script(self, turns: list[dict[str, Any]], name: str = "script.json") -> Path:
        path = self.root / name
        path.write_text(json.dumps(turns))
        return path

    def args(self, expert: str, query: str, script: Path | None, *extra: str) -> list[str]:
        args = ["run", expert, query, "--config", str(self.config)]
        args += ["--workspace", str(self.workspace)]
        if script is not None:
            args += ["--provider", "scripted", "--script", str(script)]
        return [*args, *extra]

    def run(
        self, turns: list[dict[str, Any]], *extra: str, expert: str = "worker", query: str = "do it"
    ) -> Result:
        """In-process: fast, and the loop's own code shows up in tracebacks."""
        out = io.StringIO()
        err = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(self.args(expert, query, self.script(turns), *extra))
        events = [parse_event(line) for line in out.getvalue().splitlines()]
        return Result(code, events, err.getvalue())

    def spawn(self, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """As a child process, for signals and environment isolation."""
        return subprocess.Popen(
            [sys.executable, "-m", "runtime.cli", *args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )


def make_project(root: Path, toml: str) -> Project:
    project = Project(root)
    project.config.write_text(toml)
    project.workspace.mkdir()
    return project


WORKER_TOML = """
[experts."worker"]
instruction = "Do what you are asked with the tools."
"""


# A coordinator with two delegates (one of them delegating again), a plain worker, and an
# Expert with an interactive tool.
TEAM_TOML = """
[experts."lead"]
instruction = "Coordinate."
delegates = ["helper", "checker"]

[experts."helper"]
description = "Answers arithmetic"
instruction = "Answer."
delegates = ["checker"]

[experts."checker"]
description = "Checks answers"
instruction = "Check."

[experts."worker"]
instruction = "Do what you are asked with the tools."

[experts."asker"]
instruction = "Ask the user when unsure."

[experts."asker".skills."human"]
type = "interactiveSkill"
description = "Ask the person running you"

[experts."asker".skills."human".tools."askUser"]
description = "Ask the user a question"
inputJsonSchema = '{"type":"object","properties":{"question":{"type":"string"}}}'
"""
