"""The docs are self-contained: every relative link in README.md, docs/ and examples/
resolves to a file of the repository (and a ``#section`` to a heading of it), and nothing
user-facing cites a document the repository does not have."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md"),
                    *(REPO / "examples").glob("*.md")])
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
EXTERNAL = ("http://", "https://", "mailto:")


def links(document: Path) -> list[str]:
    text = FENCE.sub("", document.read_text(encoding="utf-8"))  # code is not a link
    return [target for target in LINK.findall(text) if not target.startswith(EXTERNAL)]


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(document: Path) -> set[str]:
    text = FENCE.sub("", document.read_text(encoding="utf-8"))
    return {slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def test_there_are_documents_with_links() -> None:
    assert REPO / "README.md" in DOCUMENTS and len(DOCUMENTS) >= 5
    assert sum(len(links(document)) for document in DOCUMENTS) > 20


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves_inside_the_repository(document: Path) -> None:
    broken = []
    for target in links(document):
        path, _, anchor = target.partition("#")
        resolved = (document.parent / path).resolve() if path else document
        if REPO not in resolved.parents and resolved != REPO:
            broken.append(f"{target} (outside the repository)")
        elif not resolved.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{document.relative_to(REPO)}: {broken}"


def test_nothing_user_facing_cites_the_old_spec() -> None:
    for path in [*DOCUMENTS, *REPO.glob("examples/*"), *REPO.glob("server/**/*.py"),
                 *REPO.glob("journal_core/*.py")]:
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert "SPEC.md" not in text and "SPEC §" not in text, path
