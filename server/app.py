"""Build the MCP server (docs/design.md, "The MCP surface") from an open store and a
default actor.

Tools are strict: an argument the tool does not have is refused by name (a typo such as
``ttl=60`` would otherwise be ignored, and a claim made for 900 s), and a bad argument is
one line that names it, says what was wrong and what is allowed, and that nothing was
written. ``tools/list`` stays under 3,000 tokens: schemas are stripped of what tells an
agent nothing, and results carry no output schema (docs/tools.md shows each one).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.types import ToolAnnotations
from pydantic import ValidationError

from journal_core import Store, limits

from . import __version__
from .errors import translate_errors
from .tokens import ActorRefused, grant_of
from .tools import JournalTools

SERVER_NAME = "agentjournal"
INSTRUCTIONS = (
    "agentjournal is the shared journal of the agents working on this repository. Start "
    "each turn with `work`. Take work with claim(target='next') or claim a file "
    "('file:src/x.py', 'file:src/' for a folder) before editing; if it is held, pick other "
    "work. `complete` or `release` claims when done. Record decisions and traps with "
    "`remember`; hand work on with `send`. Read news with `read_unseen`, then `ack`; `wait` "
    "blocks until there is news. Every tool takes `actor` (who acts; default: the server's "
    "actor, else your client's name). Every mutating tool takes `request_id`: an id of "
    "yours for the call; a retry with the same id is answered, never applied twice."
)
ERROR_VALUES_SHOWN_MAX = limits.error_values_shown_max


@dataclass(frozen=True)
class ToolSpec:
    name: str
    title: str
    read_only: bool
    idempotent: bool


# Names are the public contract. No tool destroys data: the journal keeps every version, so
# mutate tools are destructiveHint=False; none reaches outside the store.
TOOL_SPECS: tuple[ToolSpec, ...] = (
    ToolSpec("work", "Work briefing", read_only=True, idempotent=True),
    ToolSpec("ready", "Ready steps", read_only=True, idempotent=True),
    ToolSpec("read_unseen", "Read unseen events", read_only=True, idempotent=True),
    ToolSpec("wait", "Wait for news", read_only=True, idempotent=True),
    ToolSpec("ack", "Acknowledge events", read_only=False, idempotent=True),
    ToolSpec("get", "Get an entity", read_only=True, idempotent=True),
    ToolSpec("list", "List entities", read_only=True, idempotent=True),
    ToolSpec("search", "Search", read_only=True, idempotent=True),
    ToolSpec("plan", "Create or update a plan", read_only=False, idempotent=False),
    ToolSpec("claim", "Claim work", read_only=False, idempotent=True),
    ToolSpec("renew", "Renew claims", read_only=False, idempotent=False),
    ToolSpec("release", "Release a claim", read_only=False, idempotent=False),
    ToolSpec("complete", "Complete a claim", read_only=False, idempotent=False),
    ToolSpec("remember", "Remember", read_only=False, idempotent=False),
    ToolSpec("forget", "Forget a memory item", read_only=False, idempotent=True),
    ToolSpec("send", "Send a message or handoff", read_only=False, idempotent=False),
    ToolSpec("respond", "Answer a handoff", read_only=False, idempotent=False),
    ToolSpec("journal_status", "Journal status", read_only=True, idempotent=True),
)


def annotations_for(spec: ToolSpec) -> ToolAnnotations:
    """Hints that differ from the protocol's defaults (the title is the tool's own)."""
    if spec.read_only:
        return ToolAnnotations(read_only_hint=True)
    return ToolAnnotations(destructive_hint=False, idempotent_hint=spec.idempotent or None)


def tool_function(tools: JournalTools, name: str) -> Callable[..., Any]:
    fn: Callable[..., Any] = getattr(tools, "list_items" if name == "list" else name)
    return fn


def compact_schema(schema: Any, nested: bool = False) -> Any:
    """A JSON schema without what costs an agent's context and tells it nothing: pydantic's
    generated ``title`` of every property, ``"default": null``, the description of a nested
    model. Objects refuse properties they do not declare."""
    if isinstance(schema, list):
        return [compact_schema(item, nested) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "default" and value is None:
            continue
        if key == "description" and "properties" in schema and nested:
            continue  # a nested model's docstring: the field that holds it says enough
        if key in ("properties", "$defs") and isinstance(value, dict):
            out[key] = {name: compact_schema(sub, nested or key == "$defs")
                        for name, sub in value.items()}
        else:
            out[key] = compact_schema(value, nested)
    if out.get("type") == "object" and "properties" in out:
        out["additionalProperties"] = False
    return out


class StrictTool(Tool):
    """A tool that refuses unknown arguments and explains a bad one in a line or two."""

    async def run(self, arguments: dict[str, Any], context: Any,
                  convert_result: bool = False) -> Any:
        self._refuse_unknown(arguments)
        grant = grant_of(context)
        if grant is not None and not (self.annotations and self.annotations.read_only_hint):
            try:
                grant.check_write(self.name)
            except ActorRefused as exc:
                raise ToolError(f"{exc}; nothing was written") from exc
        try:
            self.fn_metadata.validate_arguments(arguments)
        except ValidationError as exc:
            raise ToolError(validation_message(self.name, exc)) from exc
        return await super().run(arguments, context, convert_result)

    def _refuse_unknown(self, arguments: dict[str, Any]) -> None:
        known = self.argument_names()
        unknown = sorted(set(arguments) - set(known))
        if unknown:
            raise ToolError(
                f"{self.name} has no argument {unknown[0]!r}"
                + (f" (nor {', '.join(map(repr, unknown[1:]))})" if unknown[1:] else "")
                + f"; its arguments are: {', '.join(known)}. Nothing was written.")

    def argument_names(self) -> list[str]:
        return list(self.parameters.get("properties", {}))


def validation_message(tool: str, exc: ValidationError) -> str:
    """``claim: ttl_s must be ≥ 1 (got 0); nothing was written``, for each bad argument."""
    parts = []
    for error in exc.errors()[:3]:
        location = [str(p) for p in error.get("loc", ()) if not str(p).startswith(("function-",
                                                                                    "union["))]
        where = ".".join(location) or "arguments"
        got = error.get("input")
        shown = repr(got)[:60] if not isinstance(got, dict) else "an object"
        parts.append(f"{where}: {_what(error)} (got {shown})")
    return f"{tool}: " + "; ".join(parts) + ". Nothing was written."


TYPE_NAMES = {"int": "an integer", "string": "a string", "bool": "true or false",
              "list": "a list", "dict": "an object", "float": "a number"}


def _what(error: Any) -> str:
    kind, ctx = error.get("type", ""), error.get("ctx") or {}
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '?')}"
    if kind in ("greater_than_equal", "greater_than"):
        return f"must be ≥ {ctx.get('ge', ctx.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return f"must be ≤ {ctx.get('le', ctx.get('lt'))}"
    if kind == "string_too_long":
        return f"is too long (at most {ctx.get('max_length')} characters)"
    if kind == "missing":
        return "is required"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        name = kind.replace("_type", "").replace("_parsing", "")
        return f"must be {TYPE_NAMES.get(name, name)}"
    return str(error.get("msg", "is not valid")).lower()


def make_tool(tools: JournalTools, spec: ToolSpec) -> Tool:
    fn = tool_function(tools, spec.name)
    tool = StrictTool.from_function(
        translate_errors(fn), name=spec.name, title=spec.title,
        description=" ".join(inspect.cleandoc(fn.__doc__ or "").split()),
        annotations=annotations_for(spec), structured_output=False,
    )
    tool.parameters = compact_schema(tool.parameters)
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
