"""The README and docs/ render as GitHub shows them, and their relative links lead somewhere.

Rendered with markdown-it-py (CommonMark with GitHub's tables), as GitHub renders Markdown.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from ese.paths import REPO_ROOT

DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
ROW = re.compile(r"^\s*\|.*\|\s*$")


def tokens(text: str) -> list[Token]:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(text)


def stray_rows(text: str) -> list[str]:
    """Table rows that render as a paragraph's text (raw pipes), e.g. after a paragraph that
    sits inside a table and cuts it in two."""
    out = []
    toks = tokens(text)
    for i, tok in enumerate(toks):
        if tok.type != "inline" or i == 0 or toks[i - 1].type != "paragraph_open":
            continue
        out += [line for line in tok.content.splitlines() if ROW.match(line)]
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = unicodedata.normalize("NFKC", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    toks = tokens(text)
    seen: dict[str, int] = {}
    out = set()
    for i, tok in enumerate(toks):
        if tok.type != "heading_open":
            continue
        title = "".join(c.content for c in toks[i + 1].children or [] if c.type != "image")
        base = slug(title)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(text: str) -> list[str]:
    out = []
    for tok in tokens(text):
        for child in tok.children or []:
            if child.type == "link_open":
                out.append(str(child.attrs.get("href", "")))
            elif child.type == "image":
                out.append(str(child.attrs.get("src", "")))
    return out


def broken_links(doc: Path) -> list[str]:
    text = doc.read_text(encoding="utf-8")
    problems = []
    for href in links(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", href):  # http:, https:, mailto: ...: not ours
            continue
        path, _, anchor = href.partition("#")
        target = (doc.parent / path).resolve() if path else doc
        if not target.exists():
            problems.append(f"{href}: no such file {target}")
        elif (
            anchor
            and target.suffix == ".md"
            and anchor not in anchors(target.read_text(encoding="utf-8"))
        ):
            problems.append(f"{href}: no heading #{anchor} in {target.name}")
    return problems


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_table_renders_as_a_table(doc: Path) -> None:
    assert stray_rows(doc.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_relative_links_lead_to_a_file_and_heading(doc: Path) -> None:
    assert broken_links(doc) == []


def test_a_paragraph_inside_a_table_is_caught() -> None:
    text = "| a | b |\n|---|---|\n| 1 | 2 |\n\nA paragraph.\n| 3 | 4 |\n"
    assert stray_rows(text) == ["| 3 | 4 |"]
    assert stray_rows("| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n") == []


def test_a_broken_link_and_anchor_are_caught(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Real heading\n", encoding="utf-8")
    doc = tmp_path / "doc.md"
    doc.write_text(
        "# Top\n[a](other.md#real-heading) [b](missing.md) [c](other.md#nope) [d](#top) "
        "[e](#gone) [f](https://example.org/x)\n",
        encoding="utf-8",
    )
    problems = broken_links(doc)
    assert len(problems) == 3
    assert any("missing.md" in p for p in problems)
    assert any("#nope" in p for p in problems)
    assert any("#gone" in p for p in problems)


def test_github_slugs() -> None:
    assert slug("No registry, or an air-gapped machine") == "no-registry-or-an-air-gapped-machine"
    assert slug("Running the original demo's clients") == "running-the-original-demos-clients"
    assert anchors("# A\n## A\n") == {"a", "a-1"}
