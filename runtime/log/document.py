"""`perstack log --json`: one JSON object, the reference's shape.

``{"job", "events", "summary"}`` always; ``checkpoint`` with --checkpoint (ours: also with
--messages), ``checkpoints`` when --job alone names the job, ``isLatestJob`` when no job
was named, ``storagePath``, ``totalEventsBeforeLimit`` (matches before paging) and
``matchedAfterPagination`` (matches on this page). Events and checkpoints are the objects
as stored (in our event files, a history that a checkpoint file holds is left out and
named by ``elidedMessages``: see runtime.histories); an event file that cannot be read
stands as ``{type, timestamp, runId, stepNumber, unreadableFile}`` from its name. Ours:
``jobSummary`` with --summary.

Events and checkpoints are written one at a time, so that `--take 0` on a long job does
not hold every history the job ever carried in memory at once.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO

from runtime.log.summary import event_summary, job_summary
from runtime.log.view import LogView

# The document's big arrays are spliced in where these stand (json.dumps would need every
# element in memory first).
_EVENTS = "\x00events\x00"
_CHECKPOINTS = "\x00checkpoints\x00"


def _head(view: LogView, *, summary: bool) -> dict[str, Any]:
    result = view.result
    data: dict[str, Any] = {
        "job": view.log.job.to_wire(),
        "events": _EVENTS,
        "summary": event_summary(result.events),
    }
    if view.checkpoint is not None:
        data["checkpoint"] = view.checkpoint.data
    if view.include_checkpoints and view.log.checkpoints:
        data["checkpoints"] = _CHECKPOINTS
    if view.is_latest_job:
        data["isLatestJob"] = True
    data["storagePath"] = str(view.storage_path)
    data["totalEventsBeforeLimit"] = result.matched
    data["matchedAfterPagination"] = result.shown
    if summary:
        data["jobSummary"] = job_summary(view.log).to_wire()
    return data


def _array(
    items: Iterable[dict[str, Any]], dump: Callable[[Any], str], pretty: bool
) -> Iterator[str]:
    """The JSON text of a list, as json.dumps would write it at the document's 2nd level."""
    first = True
    for item in items:
        text = dump(item)
        if pretty:
            text = "\n".join("    " + line for line in text.splitlines())
        yield ("[" if first else ",") + ("\n" if pretty else "") + text
        first = False
    yield "[]" if first else ("\n  ]" if pretty else "]")


# TODO(#4): JSON escapes C0 control characters but, with ensure_ascii off, writes C1 ones
# (U+0080-U+009F, an 8-bit CSI among them) as they are; the text view escapes both.
def _dumper(pretty: bool) -> Callable[[Any], str]:
    if pretty:
        return functools.partial(json.dumps, ensure_ascii=False, indent=2)
    return functools.partial(json.dumps, ensure_ascii=False, separators=(",", ":"))


def write_json(view: LogView, out: TextIO, *, pretty: bool, summary: bool) -> None:
    dump = _dumper(pretty)
    arrays: dict[str, Callable[[], Iterable[dict[str, Any]]]] = {
        _EVENTS: lambda: (e.read() for e in view.result.events),
        _CHECKPOINTS: lambda: (c.data for c in view.log.checkpoints),
    }
    rest = dump(_head(view, summary=summary))
    for marker, items in arrays.items():
        quoted = json.dumps(marker)
        if quoted not in rest:
            continue
        before, rest = rest.split(quoted, 1)
        out.write(before)
        for chunk in _array(items(), dump, pretty):
            out.write(chunk)
    out.write(rest + "\n")
