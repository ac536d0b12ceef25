"""Command line entry point (placeholder until the MCP server lands)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    sys.stderr.write("agentjournal: the server is not built yet\n")
    return 2
