import json

import pytest
from pydantic import ValidationError

from runtime.events import UnknownEventTypeError, parse_event
from tests.reference import RECORDINGS

SHARED = RECORDINGS


def test_every_recorded_reference_event_round_trips_unchanged() -> None:
    files = sorted(SHARED.glob("*/stdout.jsonl")) + sorted(SHARED.glob("*/*/stdout.jsonl"))
    count = 0
    for path in files:
        for line in path.read_text().splitlines():
            original = json.loads(line)
            event = parse_event(line)
            assert event.to_wire() == original, (path, original["type"])
            assert json.loads(event.to_json()) == original, (path, original["type"])
            count += 1
    assert count > 200


def test_unknown_event_type_is_told_apart_from_a_bad_field() -> None:
    base = {"id": "a", "timestamp": 1, "jobId": "j", "runId": "r"}
    with pytest.raises(UnknownEventTypeError):
        parse_event({**base, "type": "somethingNew"})
    with pytest.raises(ValidationError):
        parse_event({**base, "type": "skillStderr"})


def test_unknown_fields_are_kept() -> None:
    event = parse_event(
        {
            "id": "a",
            "type": "skillStderr",
            "timestamp": 1,
            "jobId": "j",
            "runId": "r",
            "skillName": "s",
            "message": "m",
            "futureField": {"x": 1},
        }
    )
    assert event.to_wire()["futureField"] == {"x": 1}


def test_text_that_looks_like_a_fragment_placeholder_is_left_alone() -> None:
    from runtime.messages import TextPart, UserMessage

    sneaky = '"@@fragment-0-0000000000000000@@"'
    event = parse_event(
        {
            "id": "a",
            "type": "startGeneration",
            "timestamp": 1,
            "jobId": "j",
            "runId": "r",
            "expertKey": "e",
            "stepNumber": 1,
            "messages": [UserMessage(contents=[TextPart(text=sneaky)]).to_wire()],
        }
    )
    assert json.loads(event.to_json())["messages"][0]["contents"][0]["text"] == sneaky
