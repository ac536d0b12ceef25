"""agentjournal's MCP server and CLI. Imports journal_core's public API only."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("agentjournal")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
