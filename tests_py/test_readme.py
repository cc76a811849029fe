"""README.md is a user's first hour: its tour must run as printed, its REPL lines must work, its
facts must match the build files, and every file it (or a docs/ page) links to must exist."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def readme() -> str:
    return README.read_text(encoding="utf-8")


def code_blocks(text: str, language: str) -> list[str]:
    """The fenced blocks of one language ("" for a plain fence), in order."""
    blocks: list[str] = []
    inside = False
    wanted = False
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("```"):
            if inside and wanted:
                blocks.append("\n".join(current) + "\n")
            inside, wanted, current = not inside, line[3:].strip() == language, []
        elif inside:
            current.append(line)
    return blocks


def expected_prints(code: str) -> list[str]:
    """The output the tour promises: each `print(...)` line's trailing comment, or a comment
    alone on the next line when the print is too long for one."""
    lines = code.splitlines()
    expected = []
    for i, line in enumerate(lines):
        if not line.lstrip().startswith("print("):
            continue
        if "  # " in line:
            expected.append(line.split("  # ", 1)[1].strip())
        else:
            following = lines[i + 1].strip()
            assert following.startswith("# "), f"print without an expected output: {line}"
            expected.append(following[2:].strip())
    return expected


def test_the_tour_runs_and_prints_what_it_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tour = code_blocks(readme(), "python")[0]
    expected = expected_prints(tour)
    assert len(expected) >= 3
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(tour, "README.md tour", "exec"), {"__name__": "readme_tour"})
    assert out.getvalue().splitlines() == expected
    assert (tmp_path / "tour.jsonl").exists()


def test_the_tour_is_short() -> None:
    assert len(code_blocks(readme(), "python")[0].splitlines()) <= 20


def test_the_repl_lines_run_on_the_tour_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = readme()
    monkeypatch.chdir(tmp_path)
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code_blocks(text, "python")[0], "README.md tour", "exec"), {"__name__": "readme_tour"})
    session = code_blocks(text, "")
    commands = [line[len("ferrumdb> ") :] for block in session for line in block.splitlines() if line.startswith("ferrumdb> ")]
    assert commands, "README shows no REPL session"
    proc = subprocess.run(
        [sys.executable, "-m", "ferrumdb", "tour.db"],
        input="\n".join(commands) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == '"OK"'
    assert proc.stdout.splitlines()[1] == '[["user:3",{"name":"carol"}],["user:4",{"name":"dan"}]]'


def test_the_msrv_in_readme_is_cargo_tomls() -> None:
    cargo = (ROOT / "Cargo.toml").read_text(encoding="utf-8")
    msrv = re.search(r'^rust-version\s*=\s*"([^"]+)"', cargo, re.M)
    assert msrv is not None
    assert f"Rust ≥ {msrv.group(1)}" in readme()


def test_the_python_floor_in_readme_is_pyprojects() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    floor = re.search(r'^requires-python\s*=\s*">=([^"]+)"', pyproject, re.M)
    assert floor is not None
    assert f"Python ≥ {floor.group(1)}" in readme()


def test_the_default_database_is_gitignored() -> None:
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "ferrum.db*" in ignored
    assert "`ferrum.db` in the **current directory**" in readme()


def local_links(page: Path) -> list[tuple[str, str]]:
    """(target file, anchor) of every relative Markdown link or image on a page."""
    found = []
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        found.append((path, anchor))
    return found


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lowercase, punctuation dropped, spaces to hyphens."""
    result = set()
    fence = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            result.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return result


PAGES = [README, *sorted(DOCS.glob("*.md"))]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_local_link_resolves(page: Path) -> None:
    for path, anchor in local_links(page):
        target = (page.parent / path).resolve() if path else page
        assert target.exists(), f"{page.name} links to {path}, which does not exist"
        if anchor:
            assert anchor in anchors(target), f"{page.name} links to {path}#{anchor}: no such heading"


def test_readme_links_every_docs_page() -> None:
    linked = {(README.parent / path).resolve() for path, _ in local_links(README)}
    for page in DOCS.glob("*.md"):
        assert page.resolve() in linked, f"README does not link {page.relative_to(ROOT)}"


def test_the_test_script_prints_its_plan_and_installs_nothing_with_plan() -> None:
    """README's second command says what it will install; `--plan` stops there."""
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "test.sh"), "--plan"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("== plan\n")
    assert "[test] extra" in out and "chromium" in out.lower() and "postgresql" in out.lower()
    assert "== install" not in out and "== rust" not in out
    bad = subprocess.run(["bash", str(ROOT / "scripts" / "test.sh"), "--bogus"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "usage" in bad.stderr
