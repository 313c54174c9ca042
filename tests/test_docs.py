"""The manual holds together: the README's test command is the one CI runs, and every relative
link in the README, docs/ and the other project pages leads to a file that exists and, with a
`#`, to a heading in it. The link scanner is first shown to catch planted broken links."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(
    [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "deploy").glob("*.md")]
    + [ROOT / "models" / "README.md", ROOT / "tests" / "fakes" / "README.md"]
)

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
# [text](target) and ![alt](target); the text may run over a line break, the target may not.
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)


def _prose(text: str) -> str:
    """The text with code blocks and code spans blanked out: a `[x](y)` or `# x` in code is
    neither a link nor a heading."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def anchors(text: str) -> set[str]:
    """The anchors GitHub makes for a page's headings: lower case, punctuation dropped, spaces
    made hyphens, and a repeated one numbered (`x`, `x-1`, ...)."""
    seen: dict[str, int] = {}
    found = set()
    for title in _HEADING.findall(_FENCE.sub("", text)):
        slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        found.add(slug if n == 0 else f"{slug}-{n}")
    return found


def broken_links(page: Path) -> list[str]:
    """Every relative link of `page` whose file or heading is not there, as `target (why)`."""
    bad = []
    for target in _LINK.findall(_prose(page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
            continue  # https:, mailto: and the like: not this project's files
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(f"{target} (no such file)")
        elif anchor and (dest.is_dir() or anchor not in anchors(dest.read_text(encoding="utf-8"))):
            bad.append(f"{target} (no such heading)")
    return bad


@pytest.mark.parametrize(
    ("markdown", "broken"),
    [
        ("[ok](other.md) and [here](#a-title)", []),
        ("[ok](other.md#a-heading-its-here)", []),
        ("see [missing](nowhere.md)", ["nowhere.md (no such file)"]),
        ("see [wrong](other.md#no-such-heading)", ["other.md#no-such-heading (no such heading)"]),
        ("see [self](#not-a-heading)", ["#not-a-heading (no such heading)"]),
        ("a link over\n[two\nlines](gone.md)", ["gone.md (no such file)"]),
        ("![picture](gone.png)", ["gone.png (no such file)"]),
        ("[outside](https://example.org/x.md) and `[code](gone.md)`", []),
        (
            "```\n[fenced](gone.md)\n# not a heading\n```\n[x](#not-a-heading)",
            ["#not-a-heading (no such heading)"],
        ),
        ("[dir](sub/#x)", ["sub/#x (no such heading)"]),
    ],
)
def test_link_scanner_self_test(tmp_path: Path, markdown: str, broken: list[str]) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "other.md").write_text("# Other\n\n## A heading: it's here\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(f"# A title\n\n{markdown}\n", encoding="utf-8")
    assert broken_links(page) == broken


def test_anchors_follow_github() -> None:
    text = "# Live (`veil run`)\n## Small faces on a Pi's budget\n## Tests\n## Tests\n"
    assert anchors(text) == {"live-veil-run", "small-faces-on-a-pis-budget", "tests", "tests-1"}


def test_the_manual_has_its_pages() -> None:
    docs = {p.name for p in PAGES if p.parent == ROOT / "docs"}
    assert len(docs) >= 8, docs
    assert all(p.is_file() for p in PAGES)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_every_docs_page_is_linked_from_the_readme() -> None:
    readme = _prose((ROOT / "README.md").read_text(encoding="utf-8"))
    linked = {t.partition("#")[0] for t in _LINK.findall(readme)}
    assert {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")} <= linked


def _command_after(text: str, marker: str) -> str:
    """The one line of the first code block after `marker`."""
    block = re.search(re.escape(marker) + r".*?```sh\n(.*?)\n```", text, re.DOTALL)
    assert block, f"no code block after {marker!r}"
    (line,) = block.group(1).splitlines()
    return line


def test_the_readme_test_command_is_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    ci_command = [line for line in ci if line and not line.startswith("#")][-1]
    assert _command_after(readme, "**Run the tests**") == ci_command
