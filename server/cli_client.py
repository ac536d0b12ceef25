"""``agentjournal init --client claude-code|cursor|generic``: the configuration an MCP client
needs to start this store's server, with every path resolved.

Clients start stdio servers in a working directory of their own, with an environment of
their own (clients on the TypeScript SDK pass only a short safe list of variables unless
the configuration sets them), and many expand no ``${VAR}`` in their configuration. So the
configuration written here depends on nothing but itself: the absolute path of the
``agentjournal`` command that ran ``init`` (or of its Python, ``-m agentjournal``), and the
absolute path of the store, given with ``--store``.

- ``claude-code``: the ``agentjournal`` server in ``.mcp.json`` at the repository root and
  the hooks (``agentjournal hook``) in ``.claude/settings.local.json`` (Claude Code's
  settings of this checkout, which it keeps out of git), merged into what is there;
- ``cursor``: the same in ``.cursor/mcp.json`` and ``.cursor/hooks.json``;
- ``generic``: the ``mcpServers`` entry most other clients read, printed on stdout.

``--print`` prints the MCP configuration instead of writing anything. Files are merged: only
the ``agentjournal`` server entry and the hooks that run ``agentjournal hook`` are replaced.
What is written names this machine's paths: it belongs to this checkout, not to git.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from dataclasses import dataclass
from typing import Any

import orjson

from journal_core.layout import worktree_root

CLIENTS = ("claude-code", "cursor", "generic")
SERVER_KEY = "agentjournal"
HOOK_TIMEOUT_S = 10
DEFAULT_ACTORS = {"claude-code": "claude-code", "cursor": "cursor", "generic": None}
CONFIG_BYTES_MAX = 1 << 20  # a client configuration file larger than this is not merged


@dataclass(frozen=True)
class ClientFiles:
    """What one client needs: its MCP configuration and, for some, its hook settings."""

    mcp_path: str | None  # relative to the repository root; None: printed only
    mcp: dict[str, Any]
    hooks_path: str | None = None
    hooks: dict[str, Any] | None = None


def add_init_arguments(init: argparse.ArgumentParser) -> None:
    init.add_argument("--client", choices=CLIENTS, default=None,
                      help="also write this client's configuration for the store, with "
                      "absolute paths (claude-code: .mcp.json and .claude/settings.local.json; "
                      "cursor: .cursor/mcp.json and .cursor/hooks.json; generic: printed)")
    init.add_argument("--actor", default=None,
                      help="with --client: the actor its server and hooks act as (default: "
                      "claude-code, cursor; generic: the MCP client's name)")
    init.add_argument("--print", action="store_true", dest="print_config",
                      help="with --client: print the MCP configuration, write no file")


def command_path() -> list[str]:
    """The command that runs this very installation of agentjournal, by absolute path: the
    ``agentjournal`` script beside this Python (a venv's, pipx's or uv's ``bin/``), else this
    Python with ``-m agentjournal``. The venv's Python is not resolved through its symlink:
    the link is what makes it the venv's."""
    folder = os.path.dirname(os.path.abspath(sys.executable))
    script = os.path.join(folder, "agentjournal")
    if os.path.isfile(script) and os.access(script, os.X_OK):
        return [script]
    return [os.path.abspath(sys.executable), "-m", "agentjournal"]


def client_files(client: str, command: list[str], store_root: str,
                 actor: str | None) -> ClientFiles:
    """The configuration of ``client`` for the store at ``store_root``."""
    if client not in CLIENTS:
        raise ValueError(f"unknown client {client!r}")
    who = ["--actor", actor] if actor else []
    serve = [*command[1:], "serve", "--store", store_root, *who]
    if client == "generic":
        return ClientFiles(None, {"mcpServers": {SERVER_KEY: {"command": command[0],
                                                              "args": serve}}})
    hook = [*command, "hook", "--store", store_root, *who]

    def line(*extra: str) -> str:
        return shlex.join([*hook[: len(command) + 1], *extra, *hook[len(command) + 1:]])

    if client == "claude-code":
        entry = {"type": "stdio", "command": command[0], "args": serve}
        events = {"SessionStart": line(), "UserPromptSubmit": line(),
                  "Stop": line("--as", "claude-stop")}
        hooks = {"hooks": {event: [{"hooks": [{"type": "command", "command": text,
                                               "timeout": HOOK_TIMEOUT_S}]}]
                           for event, text in events.items()}}
        return ClientFiles(".mcp.json", {"mcpServers": {SERVER_KEY: entry}},
                           os.path.join(".claude", "settings.local.json"), hooks)
    entry = {"command": command[0], "args": serve}
    cursor_hooks = {"version": 1, "hooks": {
        "sessionStart": [{"command": line("--as", "cursor-session-start")}],
        "stop": [{"command": line("--as", "cursor-stop"), "loop_limit": 1}],
    }}
    return ClientFiles(os.path.join(".cursor", "mcp.json"),
                       {"mcpServers": {SERVER_KEY: entry}},
                       os.path.join(".cursor", "hooks.json"), cursor_hooks)


def render(doc: dict[str, Any]) -> str:
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"


# -- writing ------------------------------------------------------------------------------
def configure(args: argparse.Namespace, store_root: str) -> int:
    """``init --client``: write (or print) the client's configuration; say what was done."""
    client = str(args.client)
    actor = args.actor if args.actor is not None else DEFAULT_ACTORS[client]
    files = client_files(client, command_path(), store_root, actor)
    if args.print_config or files.mcp_path is None:
        sys.stdout.write(render(files.mcp))
        sys.stdout.flush()
        return 0
    base = worktree_root(os.getcwd()) or os.getcwd()
    written = [merge_servers(os.path.join(base, files.mcp_path), files.mcp)]
    if files.hooks_path is not None and files.hooks is not None:
        written.append(merge_hooks(os.path.join(base, files.hooks_path), files.hooks))
    entry = files.mcp["mcpServers"][SERVER_KEY]
    sys.stderr.write(f"{client}: wrote {' and '.join(written)} (this machine's paths: keep "
                     f"them out of git); its server runs "
                     f"{shlex.join([entry['command'], *entry['args']])}\n")
    return 0


def merge_servers(path: str, doc: dict[str, Any]) -> str:
    existing = read_config(path)
    servers = existing.get("mcpServers")
    if not isinstance(servers, dict):
        servers = {}
    servers[SERVER_KEY] = doc["mcpServers"][SERVER_KEY]
    existing["mcpServers"] = servers
    write_config(path, existing)
    return path


def merge_hooks(path: str, doc: dict[str, Any]) -> str:
    """Replace the hooks that run ``agentjournal hook`` by ours; keep every other hook."""
    existing = {**{k: v for k, v in doc.items() if k != "hooks"}, **read_config(path)}
    hooks = existing.get("hooks")
    if not isinstance(hooks, dict):
        hooks = {}
    for event, entries in doc["hooks"].items():
        kept = [entry for entry in hooks.get(event) or [] if not _ours(entry)]
        hooks[event] = kept + entries
    existing["hooks"] = hooks
    write_config(path, existing)
    return path


def _ours(entry: Any) -> bool:
    if not isinstance(entry, dict):
        return False
    nested = entry.get("hooks")  # Claude Code nests hooks in a matcher entry; Cursor does not
    inner: list[Any] = nested if isinstance(nested, list) else [entry]
    return any(isinstance(hook, dict) and _runs_our_hook(str(hook.get("command", "")))
               for hook in inner)


def _runs_our_hook(command: str) -> bool:
    try:
        words = shlex.split(command)
    except ValueError:
        return False
    return any(os.path.basename(word) == "agentjournal" or word == "agentjournal"
               for word in words[:3]) and "hook" in words


def read_config(path: str) -> dict[str, Any]:
    """A client's JSON configuration, or {} when there is none. One that does not parse is
    refused: it is the user's file, and rewriting it would lose what they wrote."""
    from .cli import UsageError

    try:
        with open(path, "rb") as handle:
            data = handle.read(CONFIG_BYTES_MAX + 1)
    except FileNotFoundError:
        return {}
    if len(data) > CONFIG_BYTES_MAX:
        raise UsageError(f"{path} is larger than {CONFIG_BYTES_MAX} bytes; add the "
                         "configuration by hand (`init --client ... --print` shows it)")
    try:
        doc = orjson.loads(data) if data.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"{path} is not valid JSON ({exc}); fix it, or print the "
                         "configuration with `init --client ... --print` and add it by hand"
                         ) from None
    if not isinstance(doc, dict):
        raise UsageError(f"{path} does not hold a JSON object; fix it, or use --print")
    return doc


def write_config(path: str, doc: dict[str, Any]) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(render(doc))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
