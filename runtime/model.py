"""The base of every model that is read from or written to a Perstack file.

Fields are snake_case in Python and camelCase on the wire, exactly as the reference writes
them. Unknown fields are kept (``extra="allow"``) so that a file written by a newer
runtime, ours or the reference's, round-trips without loss.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


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
        return self.model_dump_json(exclude_none=True)
