"""MCP skills: tools served by MCP servers over stdio, SSE or streamable HTTP.

Importing this package costs nothing: the `mcp` SDK is imported only when a server is
actually started (``McpSkill.start``), so a run whose tool schemas come from
`perstack.lock` never pays for it unless a tool of an MCP skill is called.
"""

from runtime.skills.mcp.errors import McpSkillError
from runtime.skills.mcp.skill import McpSkill
from runtime.skills.mcp.timeouts import McpTimeouts

__all__ = ["McpSkill", "McpSkillError", "McpTimeouts"]
