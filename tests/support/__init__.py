"""Helpers shared by the tests, in one place: ``engine`` (hand-written records, clocks,
store images), ``reliability`` (child processes, journal audits), ``mcp`` (MCP clients
and servers under test), ``storm_writer`` (the writer child of the storms)."""
