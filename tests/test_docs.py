"""Every file the documentation points to is in the repository (issue 19 #18: README.md and
pyproject.toml named an ANGEL.md the repository does not have)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [
    ROOT / "README.md",
    ROOT / "pyproject.toml",
    ROOT / "tests" / "README.md",
    ROOT / "benchmarks" / "README.md",
    *sorted((ROOT / "docs").rglob("*.md")),
]
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")  # [text](path) and [text](path#anchor)
NAMED = re.compile(r"(?<![\w/.-])([\w./-]+\.md)\b")  # a bare mention: ANGEL.md, docs/brokers/angel.md
PLACEHOLDERS = {"docs/brokers/NAME.md"}  # a pattern for a new broker's notes, not a file


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_a_document_names_exists(doc):
    text = doc.read_text(encoding="utf-8")
    missing = []
    for target in LINK.findall(text):
        if not re.match(r"[a-z]+:", target) and not (doc.parent / target).exists():
            missing.append(target)
    for name in NAMED.findall(text):
        if name in PLACEHOLDERS or name.startswith(("http", "//")):
            continue
        if not any((base / name).exists() for base in (ROOT, doc.parent)):
            missing.append(name)
    assert not missing, f"{doc.relative_to(ROOT)} names files the repository does not have: {sorted(set(missing))}"
