"""Our messages in the Messages API's shape, as the reference sends them."""

from __future__ import annotations

import base64
import json

from pydantic import TypeAdapter

from runtime.messages import (
    AnyMessage,
    ExpertMessage,
    FileInlinePart,
    ImageInlinePart,
    InstructionMessage,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolMessage,
    ToolResultPart,
    UserMessage,
)
from runtime.providers.convert import convert_messages, request_body
from runtime.providers.provider import GenerationRequest
from tests.reference import RECORDINGS


def test_instruction_becomes_one_cached_system_block() -> None:
    system, turns = convert_messages(
        [InstructionMessage(contents=[TextPart(text="Be brief.")], cache=True)]
    )

    assert system == [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    assert turns == []


def test_uncached_instruction_has_no_cache_control() -> None:
    system, _ = convert_messages([InstructionMessage(contents=[TextPart(text="x")])])

    assert system == [{"type": "text", "text": "x"}]


def test_expert_message_keeps_signed_thinking_text_and_tool_calls_in_order() -> None:
    message = ExpertMessage(
        contents=[
            ThinkingPart(thinking="plan", signature="sig"),
            ThinkingPart(thinking="unsigned, refused by the API"),
            TextPart(text="I will write it."),
            ToolCallPart(tool_call_id="toolu_1", tool_name="writeTextFile", args={"path": "a"}),
        ]
    )

    _, turns = convert_messages([message])

    assert turns == [
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "plan", "signature": "sig"},
                {"type": "text", "text": "I will write it."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "writeTextFile",
                    "input": {"path": "a"},
                },
            ],
        }
    ]


def test_tool_results_go_back_as_a_user_turn_with_errors_marked() -> None:
    message = ToolMessage(
        contents=[
            ToolResultPart(
                tool_call_id="toolu_1", tool_name="readTextFile", contents=[TextPart(text="ok")]
            ),
            ToolResultPart(
                tool_call_id="toolu_2",
                tool_name="readTextFile",
                contents=[TextPart(text="no such file")],
                is_error=True,
            ),
        ]
    )

    _, turns = convert_messages([message])

    assert turns == [
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": "no such file",
                    "is_error": True,
                },
            ],
        }
    ]


def test_tool_result_with_an_image_is_a_list_of_blocks() -> None:
    part = ToolResultPart(
        tool_call_id="t",
        tool_name="shot",
        contents=[
            TextPart(text="see"),
            ImageInlinePart(encoded_data="AAAA", mime_type="image/png"),
        ],
    )

    _, turns = convert_messages([ToolMessage(contents=[part])])

    assert turns[0]["content"][0]["content"] == [
        {"type": "text", "text": "see"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
    ]


def test_user_files_become_documents() -> None:
    text = base64.b64encode(b"hello").decode()
    message = UserMessage(
        contents=[
            FileInlinePart(encoded_data=text, mime_type="text/plain"),
            FileInlinePart(encoded_data="JVBERi0=", mime_type="application/pdf"),
        ]
    )

    _, turns = convert_messages([message])

    assert [block["source"] for block in turns[0]["content"]] == [
        {"type": "text", "media_type": "text/plain", "data": "hello"},
        {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
    ]


def test_neighbouring_user_messages_merge_into_one_turn() -> None:
    # As in the reference's recorded retry: the extra user message joins the query's turn.
    _, turns = convert_messages(
        [
            UserMessage(contents=[TextPart(text="Hello!")]),
            UserMessage(contents=[TextPart(text="Try again.")]),
        ]
    )

    assert turns == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Hello!"}, {"type": "text", "text": "Try again."}],
        }
    ]


def test_request_body_has_temperature_only_without_thinking() -> None:
    def body(budget: int | None) -> dict[str, object]:
        return request_body(
            GenerationRequest(
                model="m",
                messages=[],
                tools=None,
                max_tokens=10,
                timeout_s=1,
                reasoning_budget=budget,
                temperature=0.2,
            )
        )

    assert body(None)["temperature"] == 0.2
    assert "temperature" not in body(2048)


def test_recorded_checkpoints_convert_to_exactly_what_the_reference_sent() -> None:
    # The reference's own run: each proceeding checkpoint's messages are the next request.
    scenario = RECORDINGS / "02-multi-step-files" / "perstack-cli"
    lines = (scenario / "requests.jsonl").read_text().splitlines()
    sent_by_length = {len(b["messages"]): b for b in (json.loads(x)["body"] for x in lines)}
    checkpoints = [json.loads(p.read_text()) for p in (scenario / "disk").rglob("checkpoints/*")]
    proceeding = [c for c in checkpoints if c["status"] == "proceeding"]
    assert len(proceeding) == 3

    for checkpoint in proceeding:
        messages = TypeAdapter(list[AnyMessage]).validate_python(checkpoint["messages"])
        system, turns = convert_messages(messages)

        sent = sent_by_length[len(turns)]
        assert turns == sent["messages"]
        assert system == sent["system"]


def test_no_more_cache_breakpoints_than_the_api_allows_the_latest_kept() -> None:
    messages: list[AnyMessage] = [InstructionMessage(contents=[TextPart(text="i")], cache=True)]
    for n in range(6):
        messages.append(UserMessage(contents=[TextPart(text=f"u{n}")], cache=True))
        messages.append(ExpertMessage(contents=[TextPart(text=f"e{n}")]))

    system, turns = convert_messages(messages)

    cached = [b["text"] for t in turns for b in t["content"] if "cache_control" in b]
    assert "cache_control" in system[0]
    assert cached == ["u3", "u4", "u5"]
