"""Ferrum Studio end to end in headless Chromium (Playwright): load the page,
browse keys, edit a document and see it in Python, see the metrics move.

Needs Playwright for Python and Debian's ``chromium`` (``scripts/test.sh``
installs both). Without them the tests skip with the reason, except under
``CI=true``, where a missing browser is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator

import pytest

import ferrumdb

IN_CI = os.environ.get("CI", "").lower() == "true"


def _find_chromium() -> str | None:
    """$CHROMIUM, else Debian's /usr/bin/chromium, else a Chrome on PATH."""
    for candidate in [os.environ.get("CHROMIUM"), "/usr/bin/chromium", "chromium", "google-chrome", "chromium-browser"]:
        if candidate and (os.path.isfile(candidate) or shutil.which(candidate)):
            return shutil.which(candidate) or candidate
    return None


CHROMIUM = _find_chromium()


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install playwright)"
    if CHROMIUM is None:
        return "no Chromium found (apt-get install chromium, or set CHROMIUM=/path/to/chrome)"
    return None


_REASON = _missing()
if _REASON is not None:
    if IN_CI:
        pytest.fail(f"the Studio browser test must run in CI: {_REASON}", pytrace=False)
    pytest.skip(_REASON, allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield p
    finally:
        context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


@pytest.fixture
def studio(db: ferrumdb.FerrumDB) -> str:
    for i in range(30):
        db[f"user:{i:02d}"] = {"name": f"user {i}", "age": 20 + i}
    db["order:2026:1"] = {"total": 9.5}
    db["settings"] = {"dark": True}
    return db.studio(port=0)


def test_overview_loads(page: Page, studio: str, db: ferrumdb.FerrumDB) -> None:
    """The page loads from the library and shows the open database."""
    page.goto(studio)
    expect(page.locator("#o-keys")).to_have_text("32")
    expect(page.locator("#db-path")).to_have_text(db.path)
    expect(page.locator("#live-dot")).to_have_class("live on")


def test_browse_keys_tree_and_paging(page: Page, studio: str) -> None:
    """The key browser filters by prefix, groups on ":" and pages with the cursor."""
    page.goto(studio + "#/keys?prefix=user:&limit=25")
    list_ = page.locator("#key-list li a")
    expect(list_).to_have_count(25)
    expect(list_.first).to_have_text("user:00")
    expect(page.locator("#next-page")).to_be_enabled()
    page.click("#next-page")
    expect(list_).to_have_count(5)
    expect(list_.first).to_have_text("user:25")
    expect(page.locator("#next-page")).to_be_disabled()
    page.click("#prev-page")
    expect(list_.first).to_have_text("user:00")
    # Without a prefix, the tree groups on ":" with real counts, and opening
    # a group loads its children: "order:2026:1" sits under order: > 2026:.
    page.goto(studio + "#/keys")
    tree = page.locator("#key-tree")
    expect(tree.locator("summary", has_text="user:")).to_contain_text("30")
    tree.locator("summary", has_text="order:").click()
    expect(tree.locator("summary", has_text="2026:")).to_be_visible()
    tree.locator("summary", has_text="2026:").click()
    expect(tree.locator("a.leaf", has_text="1")).to_have_attribute("title", "order:2026:1")
    expect(tree.locator("a.leaf[title='settings']")).to_be_visible()
    # Typing a prefix filters.
    page.fill("#prefix", "sett")
    expect(list_).to_have_count(1)
    expect(list_.first).to_have_text("settings")


def test_edit_document_is_seen_by_python(page: Page, studio: str, db: ferrumdb.FerrumDB) -> None:
    """Open a document, edit its JSON, save: Python reads the new value."""
    page.goto(studio + "#/keys?prefix=user:")
    page.click("#key-list a >> text=user:07")
    expect(page.locator("#doc-key")).to_have_text("user:07")
    expect(page.locator("#doc-body")).to_contain_text('"name": "user 7"')
    page.click("#edit-doc")
    page.fill("#doc-editor", json.dumps({"name": "edited in Studio", "tags": ["x"]}))
    page.click("#save-doc")
    expect(page.locator("#doc-body")).to_contain_text('"name": "edited in Studio"')
    assert db["user:07"] == {"name": "edited in Studio", "tags": ["x"]}
    # Invalid JSON is caught in the page and nothing is written.
    page.click("#edit-doc")
    page.fill("#doc-editor", "{oops")
    page.click("#save-doc")
    expect(page.locator(".error-box")).to_contain_text("Not valid JSON")
    assert db["user:07"] == {"name": "edited in Studio", "tags": ["x"]}


def test_edit_keeps_and_changes_ttl(page: Page, studio: str, db: ferrumdb.FerrumDB) -> None:
    """The editor shows the TTL; saving keeps it unless the user changes it."""
    db.set("session", {"n": 1}, ttl=3600)
    page.goto(studio + "#/doc/session")
    expect(page.locator("#doc-ttl-text")).to_contain_text("expires in")
    page.click("#edit-doc")
    page.fill("#doc-editor", json.dumps({"n": 2}))
    page.click("#save-doc")
    expect(page.locator("#doc-body")).to_contain_text('"n": 2')
    ttl = db.ttl("session")
    assert ttl is not None and 3500 < ttl <= 3600
    page.click("#edit-doc")
    page.fill("#doc-ttl", "")
    page.click("#save-doc")
    expect(page.locator("#doc-ttl-text")).to_have_text("no expiry")
    assert db.ttl("session") is None and db["session"] == {"n": 2}
    page.click("#edit-doc")
    page.fill("#doc-ttl", "120")
    page.click("#save-doc")
    expect(page.locator("#doc-ttl-text")).to_contain_text("expires in")
    ttl = db.ttl("session")
    assert ttl is not None and 0 < ttl <= 120


def test_insert_and_confirmed_delete(page: Page, studio: str, db: ferrumdb.FerrumDB) -> None:
    """Insert a new document; delete asks first, and Cancel keeps it."""
    page.goto(studio + "#/new?prefix=note:")
    page.fill("#new-key", "note:1")
    page.fill("#new-value", '{"text": "hello"}')
    page.click("#insert-doc")
    expect(page.locator("#doc-key")).to_have_text("note:1")
    assert db["note:1"] == {"text": "hello"}
    page.click("#delete-doc")
    expect(page.locator("#modal")).to_be_visible()
    page.click("#modal-cancel")
    expect(page.locator("#modal")).to_be_hidden()
    assert "note:1" in db
    page.click("#delete-doc")
    page.click("#modal-ok")
    expect(page.locator("#key-list")).to_be_visible()
    assert "note:1" not in db


def test_query_shows_results_and_plan(page: Page, studio: str, db: ferrumdb.FerrumDB) -> None:
    """A query fills the results table and shows the plan; an index created in the page is used."""
    page.goto(studio + "#/indexes")
    page.fill("#index-field", "age")
    page.click("#create-index")
    expect(page.locator("#index-list")).to_contain_text("age")
    assert db.indexes() == ["age"]
    page.goto(studio + "#/query")
    page.fill("#filter", '{"age": {"$gte": 45}}')
    page.click("#run-query")
    expect(page.locator("#results tbody tr")).to_have_count(5)
    expect(page.locator("#query-out")).to_contain_text('"index": "age"')


def test_metrics_move_after_writes(page: Page, studio: str, db: ferrumdb.FerrumDB) -> None:
    """Writes made in Python show up on the metrics page without a reload."""
    page.goto(studio + "#/metrics")
    sets = page.locator("#m-sets")
    expect(sets).to_have_text(str(db.stats()["sets"]))
    before = db.stats()["sets"]
    for i in range(500):
        db[f"load:{i}"] = i
    expect(sets).to_have_text(f"{before + 500:,}", timeout=15_000)
    # The chart's history (sampled by the server) took in the burst: its
    # newest sample counts the writes, and a sample shows a non-zero rate.
    page.wait_for_function(
        f"Number(document.querySelector('#ops-chart').dataset.total) >= {before + 500}", timeout=15_000
    )
    assert float(page.locator("#ops-chart").get_attribute("data-peak") or 0) > 0
