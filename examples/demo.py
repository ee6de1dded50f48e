"""The main job, runnable on a fresh machine: the support-report example, end to end.

Uses Claude when ANTHROPIC_API_KEY is set, otherwise the offline scripted model, and says
which. Each run gets a fresh copy of the example workspace under .data/demo/.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from runtime.cli import main as perstack

EXAMPLE = Path(__file__).resolve().parent / "support-report"
DEMO_ROOT = Path(".data") / "demo"


def fresh_workspace(user: str) -> Path:
    workspace = DEMO_ROOT / "workspaces" / user
    if workspace.exists():
        shutil.rmtree(workspace)
    shutil.copytree(EXAMPLE / "workspace", workspace)
    return workspace


def main() -> int:
    workspace = fresh_workspace("alice")
    args = ["start", "support-analyst", "Triage the support tickets in tickets/."]
    args += ["--config", str(EXAMPLE / "perstack.toml"), "--workspace", str(workspace)]
    if os.environ.get("ANTHROPIC_API_KEY"):
        sys.stderr.write("demo: ANTHROPIC_API_KEY is set: using Claude\n")
    else:
        sys.stderr.write("demo: no ANTHROPIC_API_KEY: using the offline scripted model\n")
        args += ["--provider", "scripted", "--script", str(EXAMPLE / "script.json")]
    code = perstack(args)
    sys.stderr.write(f"demo: workspace with report.md and checkpoints: {workspace}\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
