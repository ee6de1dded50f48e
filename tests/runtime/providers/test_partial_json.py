"""Tool input from partial JSON fragments: any cut gives back the original object."""

from __future__ import annotations

import itertools
import json
import re

import pytest

from runtime.providers.partial_json import ToolInputAssembler, ToolInputError, UnusableToolInput

SAMPLES = [
    {},
    {"path": "notes.txt", "text": "first line\nsecond line\n"},
    {'k\u00e9y "q"': ["\\", "\u2603", "😀", 1e-3, -0, True, None], "": {"": ""}},
]


def assemble(fragments: list[str]) -> object:
    assembler = ToolInputAssembler({})
    for fragment in fragments:
        assembler.feed(fragment)
    return assembler.result()


@pytest.mark.parametrize("value", SAMPLES)
@pytest.mark.parametrize("ascii_only", [True, False])
def test_every_two_and_three_way_split_gives_the_original(value: object, ascii_only: bool) -> None:
    raw = json.dumps(value, ensure_ascii=ascii_only)
    for i, j in itertools.combinations_with_replacement(range(len(raw) + 1), 2):
        assert assemble([raw[:i], raw[i:j], raw[j:]]) == value


def test_no_fragment_empty_fragments_and_whitespace_give_an_empty_object() -> None:
    assert assemble([]) == {}
    assert assemble([""]) == {}
    assert assemble(["", " \n", ""]) == {}


def test_a_non_streamed_start_input_is_kept_when_no_fragment_follows() -> None:
    assert ToolInputAssembler({"path": "a"}).result() == {"path": "a"}


@pytest.mark.parametrize("raw", ['{"path": "a"', "[1, 2]", "nul"])
def test_truncated_or_non_object_input_is_an_error_quoting_it(raw: str) -> None:
    with pytest.raises(ToolInputError, match="tool input"):
        assemble([raw])


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ('{"from": 1e999}', "the number 1e999 is out of range"),
        ('{"x": [-1e400]}', "the number -1e400 is out of range"),
        ('{"x": NaN}', "NaN is not a number JSON allows"),
        ('{"x": -Infinity}', "-Infinity is not a number JSON allows"),
        ('{"x": ' + "9" * 5000 + "}", "has 5000 digits (at most 4300)"),
        ('{"x": ' + "[" * 100_000 + "]" * 100_000 + "}", "nests deeper than 100 levels"),
        ('{"x": ' + "[" * 200 + "]" * 200 + "}", "nests deeper than 100 levels"),
    ],
)
def test_input_that_cannot_travel_back_as_json_is_unusable_not_malformed(
    raw: str, reason: str
) -> None:
    with pytest.raises(UnusableToolInput, match=re.escape(reason)):
        assemble([raw[:7], raw[7:]])


def test_deep_but_reasonable_input_is_kept() -> None:
    value = {"x": json.loads("[" * 99 + "]" * 99)}
    assert assemble([json.dumps(value)]) == value
