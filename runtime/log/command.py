"""`perstack log`: read a workspace's jobs and show their events, for a person or as JSON.

Exit codes: 0 shown (also when no event matches); 1 a folder or a checkpoint to show in
full could not be read (an unreadable event file is shown as such, not fatal);
2 bad usage: an unknown job, run or checkpoint (the message lists the known ones), a bad
--step, --type or --filter, or no jobs in the workspace.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TextIO

from runtime.errors import PerstackError
from runtime.log.document import write_json
from runtime.log.errors import LogError
from runtime.log.filters import (
    DEFAULT_TAKE,
    FilterExpression,
    FilterOptions,
    StepFilter,
    event_type,
)
from runtime.log.reader import WorkspaceLog
from runtime.log.render import render_text
from runtime.log.view import Selection, build_view
from runtime.text import visible

EXIT_SHOWN = 0
EXIT_UNREADABLE = 1
EXIT_USAGE = 2

# The reference's override of where the ``perstack`` folder is (default ``./perstack``).
STORAGE_ENV = "PERSTACK_STORAGE_PATH"

EPILOG = """\
--step takes N, >N, >=N, <N, <=N or N-M (inclusive).
--filter takes '.field OP value' on the stored event (camelCase names); OP is one of
  == != > >= < <=; '[]' matches any element, '[N]' one element; value is a number,
  true/false or a quoted string. Examples:
    --filter '.type == "completeRun"'     --filter '.stepNumber >= 5'
    --filter '.toolCalls[].toolName == "readTextFile"'
--errors: stopRunByError and retry events (ours also: tool results marked isError).
--tools: callTools, resolveToolResults, callInteractiveTool.
--delegations: callDelegate, stopRunByDelegate.
Filters combine with AND. Paging (--offset, --take) applies to the matches; --context
then adds the N events before and after each match on the page.

exit codes: 0 shown, 1 a folder or checkpoint could not be read, 2 bad usage (unknown
id or event type, bad filter, no jobs in the workspace)
"""


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def add_log_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "log",
        help="show the events, checkpoints and summary of a job in the workspace",
        description="Show a job's events (default: the latest job), for a person or as JSON.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = parser.add_argument_group("what to show")
    where.add_argument(
        "--workspace",
        help=f"workspace folder whose perstack/ holds the jobs (default: ${STORAGE_ENV}, "
        "the storage folder itself, when set; else .)",
    )
    where.add_argument("--job", help="job id, or a unique prefix (default: the latest job)")
    where.add_argument("--run", help="only this run's events (id or unique prefix; finds its job)")
    where.add_argument(
        "--checkpoint",
        help="this checkpoint, and its run's events (id or unique prefix; finds its job)",
    )
    where.add_argument(
        "--messages", action="store_true", help="the checkpoint's messages (default: the last)"
    )
    where.add_argument(
        "--summary",
        action="store_true",
        help="status, runs, steps, tokens, duration and final text instead of the events",
    )
    which = parser.add_argument_group("which events")
    which.add_argument("--step", help="step number or range: 3, >3, >=3, <3, <=3, 2-5")
    which.add_argument("--type", help="one event type, e.g. callTools")
    which.add_argument("--errors", action="store_true", help="error events only")
    which.add_argument("--tools", action="store_true", help="tool call events only")
    which.add_argument("--delegations", action="store_true", help="delegation events only")
    which.add_argument("--filter", help="expression, e.g. '.stepNumber > 5' (see below)")
    which.add_argument(
        "--take",
        type=_count,
        default=DEFAULT_TAKE,
        help=f"events to show (default: {DEFAULT_TAKE}; 0 for all)",
    )
    which.add_argument("--offset", type=_count, default=0, help="matches to skip first")
    which.add_argument(
        "--context", type=_count, default=0, help="also show N events before and after each match"
    )
    how = parser.add_argument_group("how")
    how.add_argument("--json", action="store_true", help="one JSON object (the reference's)")
    how.add_argument("--pretty", action="store_true", help="indented JSON (implies --json)")
    how.add_argument("--verbose", action="store_true", help="full arguments, results, texts")


def _filters(args: argparse.Namespace) -> FilterOptions:
    return FilterOptions(
        step=StepFilter.parse(args.step) if args.step is not None else None,
        type=event_type(args.type) if args.type is not None else None,
        errors=args.errors,
        tools=args.tools,
        delegations=args.delegations,
        expression=FilterExpression.parse(args.filter) if args.filter is not None else None,
        take=args.take,
        offset=args.offset,
        context=args.context,
    )


def _store(workspace: str | None) -> WorkspaceLog:
    """``--workspace`` first; else the reference's variable naming the ``perstack`` folder."""
    storage = os.environ.get(STORAGE_ENV)
    if workspace is None and storage:
        return WorkspaceLog(Path("."), storage=Path(storage))
    return WorkspaceLog(Path(workspace or "."))


def show_log(args: argparse.Namespace, out: TextIO) -> None:
    """Write what ``args`` ask for to ``out``; raises LogError or StorageError."""
    selection = Selection(args.job, args.run, args.checkpoint, args.messages)
    view = build_view(_store(args.workspace), selection, _filters(args))
    if args.json or args.pretty:
        write_json(view, out, pretty=args.pretty, summary=args.summary)
        return
    text = render_text(view, verbose=args.verbose, messages=args.messages, summary=args.summary)
    # Stored texts may hold terminal control sequences: shown, never obeyed.
    out.write(visible(text) + "\n")


def run_log_command(
    args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    logging.basicConfig(stream=err, level=logging.WARNING, format="perstack log: %(message)s")
    try:
        show_log(args, out)
    except LogError as error:
        err.write(f"perstack log: {error}\n")
        return EXIT_USAGE
    except PerstackError as error:
        err.write(f"perstack log: {error}\n")
        return EXIT_UNREADABLE
    except BrokenPipeError:
        # `perstack log | head` closed the pipe; what was asked for was shown.
        return EXIT_SHOWN
    except OSError as error:
        err.write(f"perstack log: cannot read {error.filename}: {error.strerror}\n")
        return EXIT_UNREADABLE
    return EXIT_SHOWN
