"""agentjournal's MCP server and CLI. Imports journal_core's public API only."""
