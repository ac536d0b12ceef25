"""``agentjournal hook``: what an agent should know before its next step, for a client's
hook to add to the agent's context (examples/README.md, "Client hooks").

It prints one short block -- unseen events by kind, handoffs and direct messages to me, my
claims about to expire, my claims taken over -- or nothing at all when there is nothing to
say. It only reads: it never takes the store lock and never moves a cursor. ``--as``
shapes the output for one client's hook event:

    (default)             the block as plain text: Claude Code's SessionStart and
                          UserPromptSubmit hooks add a command's stdout to the context
    claude-stop           Claude Code's Stop hook: {"decision": "block", "reason": ...} when
                          handoffs to me are still open (nothing once stop_hook_active is set
                          in the hook's input, so it reminds once)
    cursor-session-start  Cursor's sessionStart hook: {"additional_context": <the block>}
    cursor-stop           Cursor's stop hook: {"followup_message": ...} when handoffs to me
                          are still open (Cursor bounds the loop with loop_limit)

A folder without a store prints nothing: the hook is harmless in every repository.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import orjson

from journal_core import InvalidArgument, Store, StoreConfig, StoreNotFound, limits
from journal_core.digest import digest, digest_text, stop_reminder

SHAPES = ("text", "claude-stop", "cursor-session-start", "cursor-stop")
HOOK_INPUT_BYTES_MAX = limits.hook_input_bytes_max


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "hook", parents=[common], help="what an agent should know now, for a client hook",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Print, in one short block, what the agent should know before its next "
        "step: unseen events by kind, open handoffs and direct messages to it, its claims "
        "about to expire, its claims taken over. Prints nothing when there is nothing to "
        "say. Never takes the store lock, never moves a cursor.",
        epilog="examples (settings for Claude Code and Cursor: examples/README.md):\n"
        "  agentjournal hook --actor claude-code#1\n"
        "  agentjournal hook --format json\n"
        "  agentjournal hook --as claude-stop    # as a Claude Code Stop hook",
    )
    parser.add_argument("--actor", default=None,
                        help="whose news (default: $AGENTJOURNAL_ACTOR)")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text (default): the block; json: every field of it")
    parser.add_argument("--as", dest="shape", choices=SHAPES, default="text",
                        help="shape the output for a client's hook event (see --help above)")
    parser.add_argument("--chars", type=int, default=limits.hook_chars_max_default,
                        metavar="N", help="the block's size at most (default "
                        f"{limits.hook_chars_max_default} characters)")


def cmd_hook(args: argparse.Namespace) -> int:
    """Exit 0 with the block (or nothing); a problem is one line on stderr and exit 1, never
    2: Claude Code reads exit 2 of a prompt hook as "block this prompt"."""
    from .cli import ACTOR_ENV, locate

    actor = args.actor or os.environ.get(ACTOR_ENV)
    if not actor:
        return complain(f"whose news? pass --actor NAME or set {ACTOR_ENV} (the actor your "
                        "agent's MCP server acts as)")
    if args.chars < 1:
        return complain("--chars must be at least 1")
    try:
        location = locate(args)
    except StoreNotFound:
        return 0  # no store here: nothing to say
    if not location.exists:
        return 0
    hook_input = read_hook_input() if args.shape in ("claude-stop",) else {}
    store = Store(location, StoreConfig(projections="off"), create=False)
    try:
        found = digest(store, actor)
    except InvalidArgument as exc:
        return complain(str(exc))
    finally:
        store.close()
    out = render(found, args.format, args.shape, args.chars, hook_input)
    if out:
        sys.stdout.write(out + "\n")
    return 0


def complain(message: str) -> int:
    sys.stderr.write(f"agentjournal hook: {message}\n")
    return 1


def render(found: dict[str, Any], output: str, shape: str, chars_max: int,
           hook_input: dict[str, Any]) -> str:
    """What the hook prints ("" for nothing)."""
    if shape == "claude-stop":
        reminder = "" if hook_input.get("stop_hook_active") else stop_reminder(found)
        return _json({"decision": "block", "reason": reminder}) if reminder else ""
    if shape == "cursor-stop":
        reminder = stop_reminder(found)
        return _json({"followup_message": reminder}) if reminder else ""
    text = digest_text(found, chars_max)
    if shape == "cursor-session-start":
        return _json({"additional_context": text}) if text else ""
    if output == "json":
        return _json(found)
    return text


def read_hook_input() -> dict[str, Any]:
    """The JSON a client's hook passes on stdin ({} when there is none or it is not JSON)."""
    if sys.stdin is None or sys.stdin.isatty():
        return {}
    try:
        data = sys.stdin.buffer.read(HOOK_INPUT_BYTES_MAX)
        doc = orjson.loads(data) if data.strip() else {}
    except (OSError, orjson.JSONDecodeError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _json(doc: dict[str, Any]) -> str:
    return orjson.dumps(doc).decode()


COMMANDS = {"hook": cmd_hook}
