"""Build the MCP server (SPEC §11) from an open store and a default actor."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp.types import ToolAnnotations

from journal_core import Store

from . import __version__
from .errors import translate_errors
from .tools import JournalTools

SERVER_NAME = "agentjournal"
INSTRUCTIONS = (
    "agentjournal is the shared journal of the agents working on this repository. Start "
    "each turn with `work`; read new events with `read_unseen`, then `ack` their last_seq. "
    "Before editing, `claim` the target (a plan step 'step:<plan_id>/<step>' or "
    "'file:<path>'); if it is held, pick other work. `complete` or `release` claims when done. "
    "Record decisions and traps with `remember`; coordinate with `send`."
)


@dataclass(frozen=True)
class ToolSpec:
    name: str
    title: str
    read_only: bool
    idempotent: bool


# Names are the public contract (SPEC §11). No tool destroys data: the journal keeps every
# version, so mutate tools are destructiveHint=False; none reaches outside the store.
TOOL_SPECS: tuple[ToolSpec, ...] = (
    ToolSpec("work", "Work briefing", read_only=True, idempotent=True),
    ToolSpec("read_unseen", "Read unseen events", read_only=True, idempotent=True),
    ToolSpec("ack", "Acknowledge events", read_only=False, idempotent=True),
    ToolSpec("get", "Get an entity", read_only=True, idempotent=True),
    ToolSpec("list", "List entities", read_only=True, idempotent=True),
    ToolSpec("search", "Search", read_only=True, idempotent=True),
    ToolSpec("plan", "Create or update a plan", read_only=False, idempotent=False),
    ToolSpec("claim", "Claim a target", read_only=False, idempotent=True),
    ToolSpec("renew", "Renew a claim", read_only=False, idempotent=False),
    ToolSpec("release", "Release a claim", read_only=False, idempotent=False),
    ToolSpec("complete", "Complete a claim", read_only=False, idempotent=False),
    ToolSpec("remember", "Remember", read_only=False, idempotent=False),
    ToolSpec("forget", "Forget a memory item", read_only=False, idempotent=True),
    ToolSpec("send", "Send a message or handoff", read_only=False, idempotent=False),
    ToolSpec("journal_status", "Journal status", read_only=True, idempotent=True),
)


def annotations_for(spec: ToolSpec) -> ToolAnnotations:
    if spec.read_only:
        return ToolAnnotations(title=spec.title, read_only_hint=True, idempotent_hint=True,
                               open_world_hint=False)
    return ToolAnnotations(title=spec.title, read_only_hint=False, destructive_hint=False,
                           idempotent_hint=spec.idempotent, open_world_hint=False)


def tool_function(tools: JournalTools, name: str) -> Callable[..., Any]:
    fn: Callable[..., Any] = getattr(tools, "list_items" if name == "list" else name)
    return fn


def compact_schema(schema: Any) -> Any:
    """A JSON schema without what costs an agent's context and tells it nothing: pydantic's
    generated ``title`` of every property and ``"default": null``."""
    if isinstance(schema, list):
        return [compact_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "default" and value is None:
            continue
        if key in ("properties", "$defs") and isinstance(value, dict):
            out[key] = {name: compact_schema(sub) for name, sub in value.items()}
        else:
            out[key] = compact_schema(value)
    return out


def make_tool(tools: JournalTools, spec: ToolSpec) -> Tool:
    fn = tool_function(tools, spec.name)
    tool = Tool.from_function(
        translate_errors(fn), name=spec.name, title=spec.title,
        description=" ".join(inspect.cleandoc(fn.__doc__ or "").split()),
        annotations=annotations_for(spec), structured_output=True,
    )
    tool.parameters = compact_schema(tool.parameters)
    tool.fn_metadata.output_schema = compact_schema(tool.fn_metadata.output_schema)
    return tool


def build_server(store: Store, default_actor: str | None = None,
                 log_level: str = "WARNING") -> MCPServer:
    """An MCPServer serving ``store``; tools act as ``default_actor`` unless told otherwise."""
    tools = JournalTools(store, default_actor)
    server: MCPServer = MCPServer(
        SERVER_NAME, title="agentjournal", version=__version__, instructions=INSTRUCTIONS,
        tools=[make_tool(tools, spec) for spec in TOOL_SPECS],
        log_level=log_level,  # type: ignore[arg-type]  # validated by the CLI's choices
    )
    return server
