"""The fake Messages API itself: standalone mode, recording, repeat."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.fakes import FakeMessagesAPI

ROOT = Path(__file__).resolve().parents[2]
# Starting a Python process that imports the runtime's script module.
STARTUP_TIMEOUT_S = 30.0
EXIT_TIMEOUT_S = 10.0

BODY = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


def test_records_requests_with_their_arrival_time() -> None:
    with FakeMessagesAPI([{"text": "a"}]) as api:
        before = time.time()
        reply = httpx.post(f"{api.url}/v1/messages", json=BODY, headers={"x-probe": "1"})
        assert reply.status_code == 200
        assert reply.json()["content"] == [{"type": "text", "text": "a"}]

    (request,) = api.requests
    assert request.body == BODY
    assert request.headers["x-probe"] == "1"
    assert request.turn_index == 0
    assert api.first_request_at is not None and api.first_request_at >= before


def test_repeat_plays_the_script_again() -> None:
    with FakeMessagesAPI([{"text": "a"}, {"text": "b"}], repeat=True) as api:
        texts = [
            httpx.post(f"{api.url}/v1/messages", json=BODY).json()["content"][0]["text"]
            for _ in range(5)
        ]

    assert texts == ["a", "b", "a", "b", "a"]


def test_runs_standalone_printing_its_url_and_serving_its_record(tmp_path: Path) -> None:
    script = tmp_path / "s.json"
    script.write_text('[{"text": "standalone"}]')
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.messages_api", "--script", str(script), "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        reply = httpx.post(f"{url}/v1/messages", json=BODY, timeout=STARTUP_TIMEOUT_S)
        record = httpx.get(f"{url}/_fake/requests").json()

        assert reply.json()["content"][0]["text"] == "standalone"
        assert [r["body"] for r in record] == [BODY]
        assert isinstance(record[0]["received_at"], float)
        process.send_signal(signal.SIGTERM)
        assert process.wait(EXIT_TIMEOUT_S) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(EXIT_TIMEOUT_S)
        if process.stdout is not None:
            process.stdout.close()


def test_stopping_interrupts_a_reply_waiting_out_a_delay() -> None:
    api = FakeMessagesAPI([{"text": "late", "delay_first_byte_s": 60}]).start()
    stream = {**BODY, "stream": True}
    with httpx.Client(timeout=30) as client:
        errors: list[BaseException] = []

        def call() -> None:
            try:
                client.post(f"{api.url}/v1/messages", json=stream)
            except httpx.HTTPError as exc:
                errors.append(exc)

        caller = threading.Thread(target=call)
        caller.start()
        while not api.requests:
            time.sleep(0.01)
        api.stop()
        caller.join(10)

    assert not caller.is_alive()
    assert errors, "the client saw the server go away"
