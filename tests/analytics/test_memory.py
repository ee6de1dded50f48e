"""Memory stays bounded by the batch size, not by the length of a run's history."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

INGEST_TIMEOUT_S = 300
CHUNK_BYTES = 2 << 20
# Peak resident memory of a child that ingests and reports it (ru_maxrss is in KiB).
MEASURE = textwrap.dedent(
    """
    import resource, sys
    from pathlib import Path
    from analytics import ingest
    report = ingest([Path(sys.argv[1])], Path(sys.argv[2]), chunk_bytes=int(sys.argv[3]))
    assert report.rows["messages"] == int(sys.argv[4]), report.rows
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
    """
)


def checkpoints_of_a_growing_history(root: Path, steps: int) -> int:
    """One checkpoint file per step, each holding the whole history so far (the reference's
    format): the files add up to the square of the run's length. Returns their bytes."""
    folder = root / "perstack" / "jobs" / "j" / "checkpoints"
    folder.mkdir(parents=True)
    messages: list[dict[str, object]] = []
    total = 0
    for step in range(steps):
        text = f"message {step} " * 150
        part = {"type": "textPart", "id": f"p{step}", "text": text}
        messages.append({"type": "userMessage", "id": f"m{step}", "contents": [part]})
        checkpoint = {
            "id": f"c{step}",
            "jobId": "j",
            "runId": "r",
            "status": "proceeding",
            "stepNumber": step,
            "expert": {"key": "e", "name": "e", "version": "1"},
            "usage": {"inputTokens": 1},
            "messages": messages,
        }
        total += (folder / f"c{step}.json").write_text(json.dumps(checkpoint))
    return total


def peak_mb(tmp_path: Path, steps: int) -> tuple[int, int]:
    source = tmp_path / f"ws-{steps}"
    size = checkpoints_of_a_growing_history(source, steps)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            MEASURE,
            str(source),
            str(tmp_path / f"data-{steps}"),
            str(CHUNK_BYTES),
            str(steps),
        ],
        capture_output=True,
        text=True,
        timeout=INGEST_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout), size >> 20


def test_messages_of_a_long_history_are_taken_out_without_holding_it_all(
    tmp_path: Path,
) -> None:
    short_peak, short_mb = peak_mb(tmp_path, 100)
    long_peak, long_mb = peak_mb(tmp_path, 400)
    assert long_mb - short_mb > 120  # sixteen times the bytes
    # Each batch's first checkpoint holds every earlier message; they were all extracted
    # again (and each one parsed the whole file): 400 steps took 505 MB against 183 MB.
    assert long_peak - short_peak < 60, (short_peak, long_peak, short_mb, long_mb)
