"""Messages and their parts, as checkpoints and events carry them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, SerializationInfo, SerializerFunctionWrapHandler
from pydantic.functional_serializers import WrapSerializer

from runtime.ids import new_id
from runtime.model import FRAGMENTS, WireModel, fragment_placeholder


class Part(WireModel):
    id: str = Field(default_factory=new_id)


class TextPart(Part):
    type: Literal["textPart"] = "textPart"
    text: str


class ThinkingPart(Part):
    type: Literal["thinkingPart"] = "thinkingPart"
    thinking: str
    signature: str | None = None


class ImageUrlPart(Part):
    type: Literal["imageUrlPart"] = "imageUrlPart"
    url: str
    mime_type: str


class ImageInlinePart(Part):
    type: Literal["imageInlinePart"] = "imageInlinePart"
    encoded_data: str
    mime_type: str


class ImageBinaryPart(Part):
    type: Literal["imageBinaryPart"] = "imageBinaryPart"
    data: str
    mime_type: str


class FileUrlPart(Part):
    type: Literal["fileUrlPart"] = "fileUrlPart"
    url: str
    mime_type: str


class FileInlinePart(Part):
    type: Literal["fileInlinePart"] = "fileInlinePart"
    encoded_data: str
    mime_type: str


class FileBinaryPart(Part):
    type: Literal["fileBinaryPart"] = "fileBinaryPart"
    data: str
    mime_type: str


class ToolCallPart(Part):
    type: Literal["toolCallPart"] = "toolCallPart"
    tool_call_id: str
    tool_name: str
    args: Any = None


ResultContent = Annotated[TextPart | ImageInlinePart | FileInlinePart, Field(discriminator="type")]


class ToolResultPart(Part):
    type: Literal["toolResultPart"] = "toolResultPart"
    tool_call_id: str
    tool_name: str
    contents: list[ResultContent]
    is_error: bool | None = None


UserContent = Annotated[
    TextPart
    | ImageUrlPart
    | ImageInlinePart
    | ImageBinaryPart
    | FileUrlPart
    | FileInlinePart
    | FileBinaryPart,
    Field(discriminator="type"),
]
ExpertContent = Annotated[TextPart | ThinkingPart | ToolCallPart, Field(discriminator="type")]


class Message(WireModel):
    """A message. Treated as immutable once built: its JSON is rendered once and reused."""

    id: str = Field(default_factory=new_id)
    cache: bool | None = None
    _json: str | None = PrivateAttr(default=None)

    def cached_json(self) -> str:
        # Straight to pydantic's private-attribute dict: its __getattr__ costs more than the
        # cache saves when a history holds hundreds of messages.
        private = self.__pydantic_private__
        assert private is not None
        text: str | None = private["_json"]
        if text is None:
            text = private["_json"] = self.model_dump_json(exclude_none=True)
        return text


class InstructionMessage(Message):
    type: Literal["instructionMessage"] = "instructionMessage"
    contents: list[TextPart]


class UserMessage(Message):
    type: Literal["userMessage"] = "userMessage"
    contents: list[UserContent]


class ExpertMessage(Message):
    type: Literal["expertMessage"] = "expertMessage"
    contents: list[ExpertContent]


class ToolMessage(Message):
    type: Literal["toolMessage"] = "toolMessage"
    contents: list[ToolResultPart]


AnyMessage = Annotated[
    InstructionMessage | UserMessage | ExpertMessage | ToolMessage,
    Field(discriminator="type"),
]


def _render_messages(
    value: list[Message], handler: SerializerFunctionWrapHandler, info: SerializationInfo
) -> Any:
    context = info.context
    if not info.mode_is_json() or not isinstance(context, dict) or FRAGMENTS not in context:
        return handler(value)
    fragment = "[" + ",".join(message.cached_json() for message in value) + "]"
    return fragment_placeholder(context[FRAGMENTS], fragment)


# A history of messages as events and checkpoints carry it (rendered through the cache).
MessageList = Annotated[list[AnyMessage], WrapSerializer(_render_messages)]
