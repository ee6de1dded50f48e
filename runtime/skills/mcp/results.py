"""MCP tool results as the parts our messages carry."""

from __future__ import annotations

import json
from typing import Any

import mcp_types

from runtime.messages import FileInlinePart, ImageInlinePart, ResultContent, TextPart
from runtime.skills.skill import ToolOutcome


def to_outcome(
    tool_name: str, args: dict[str, Any], result: mcp_types.CallToolResult
) -> ToolOutcome:
    """``isError`` results stay error results (for the model); audio and links become text."""
    parts = [_part(block) for block in result.content]
    if not parts and result.structured_content is not None:
        parts = [TextPart(text=json.dumps(result.structured_content, ensure_ascii=False))]
    if not parts:
        parts = [
            TextPart(
                text=f"Tool {tool_name} returned nothing for arguments "
                f"{json.dumps(args, ensure_ascii=False)}"
            )
        ]
    return ToolOutcome(contents=parts, is_error=bool(result.is_error))


def _part(block: mcp_types.ContentBlock) -> ResultContent:
    if isinstance(block, mcp_types.TextContent):
        return TextPart(text=block.text)
    if isinstance(block, mcp_types.ImageContent):
        return ImageInlinePart(encoded_data=block.data, mime_type=block.mime_type)
    if isinstance(block, mcp_types.EmbeddedResource):
        resource = block.resource
        if isinstance(resource, mcp_types.TextResourceContents):
            return TextPart(text=resource.text)
        mime = resource.mime_type or "application/octet-stream"
        return FileInlinePart(encoded_data=resource.blob, mime_type=mime)
    if isinstance(block, mcp_types.ResourceLink):
        return TextPart(text=f"Resource link: {block.uri} ({block.name})")
    return TextPart(text=f"[{block.mime_type} audio omitted: the model cannot take audio]")
