"""The base of every model that is read from or written to a Perstack file.

Fields are snake_case in Python and camelCase on the wire, exactly as the reference writes
them. Unknown fields are kept (``extra="allow"``) so that a file written by a newer
runtime, ours or the reference's, round-trips without loss.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticSerializationError

from runtime.text import scrub

# Serialization context key under which list-of-message serializers leave pre-rendered JSON
# (see runtime.messages.MessageList): events and checkpoints repeat the same history in
# every step, so each message is rendered once and spliced in afterwards.
FRAGMENTS = "perstack_fragments"


class WireModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="allow",
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict: camelCase keys, absent optional fields left out."""
        return self.model_dump(mode="json", exclude_none=True)

    def to_json(self) -> str:
        fragments: dict[str, str] = {}
        try:
            raw = self.__pydantic_serializer__.to_json(
                self, by_alias=True, exclude_none=True, context={FRAGMENTS: fragments}
            )
        except PydanticSerializationError:
            # A string that is not valid Unicode got in (see runtime.text): write it with
            # U+FFFD in its place rather than lose the event.
            data = self.model_dump(mode="python", by_alias=True, exclude_none=True)
            return json.dumps(scrub(data), ensure_ascii=False, default=str)
        text = raw.decode()
        for placeholder, fragment in fragments.items():
            text = text.replace(f'"{placeholder}"', fragment, 1)
        return text


def fragment_placeholder(fragments: dict[str, str], fragment: str) -> str:
    """Register ``fragment`` (JSON text) and return the string that stands for it.

    The placeholder carries a random token, and inside any other JSON string its quotes
    would be escaped, so it cannot collide with content."""
    placeholder = f"@@fragment-{len(fragments)}-{secrets.token_hex(8)}@@"
    fragments[placeholder] = fragment
    return placeholder
