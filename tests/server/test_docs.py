"""docs/tools.md is generated from the tools' schemas and real calls: the committed file
must equal a fresh generation, so the reference cannot drift from the code."""

from __future__ import annotations

from agentjournal import gen_docs
from agentjournal.app import TOOL_SPECS


def test_docs_tools_md_equals_what_the_tools_generate() -> None:
    committed = gen_docs.DOC_PATH.read_text(encoding="utf-8")
    assert committed == gen_docs.render(), \
        "docs/tools.md is stale: run python -m agentjournal.gen_docs"


def test_docs_tools_md_documents_every_tool_with_an_example() -> None:
    text = gen_docs.DOC_PATH.read_text(encoding="utf-8")
    for spec in TOOL_SPECS:
        section = text.split(f"\n## {spec.name}\n", 1)[1].split("\n## ", 1)[0]
        assert "Example" in section, spec.name
        assert "Returns " in section, spec.name
