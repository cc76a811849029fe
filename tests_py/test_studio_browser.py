"""Ferrum Studio end to end in headless Chromium (Playwright): load the page,
browse keys, edit a document and see it in Python, see the metrics move.

Needs Playwright for Python and Debian's ``chromium`` (``scripts/test.sh``
installs both). Without them the tests skip with the reason, except under
``CI=true``, where a missing browser is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

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


def test_key_list_shows_type_size_preview_and_ttl(page: Page, studio: str, db: ferrumdb.FerrumDB) -> None:
    """Each key list row shows the value's type, size and a preview, and the TTL when the key has one."""
    db.set("user:99", {"name": "temp"}, ttl=3600)
    page.goto(studio + "#/keys?prefix=user:")
    row = page.locator("#key-list li", has=page.locator("a", has_text="user:03"))
    expect(row.locator(".type")).to_have_text("object")
    expect(row.locator(".size")).to_have_text(f"{len(json.dumps(db['user:03'], separators=(',', ':')))} B")
    expect(row.locator(".preview")).to_have_text('{"name":"user 3","age":23}')
    expect(row.locator(".ttl")).to_have_count(0)
    temp = page.locator("#key-list li", has=page.locator("a", has_text="user:99"))
    expect(temp.locator(".ttl")).to_contain_text("59m")


def test_search_by_content(page: Page, studio: str) -> None:
    """field:value becomes a filter and free text matches values; the page says which it did."""
    page.goto(studio + "#/keys")
    search = page.locator("#search")
    expect(search).to_have_attribute("placeholder", re.compile("role:admin.*free text"))
    search.fill("age:45")
    expect(page.locator("#key-list li a")).to_have_count(1)
    expect(page.locator("#key-list li a")).to_have_text("user:25")
    expect(page.locator("#search-mapping")).to_contain_text('{"age":45}')
    expect(page.locator("#search")).to_be_focused()
    page.fill("#search", "USER 7")
    expect(page.locator("#key-list li a")).to_have_text(["user:07"])
    expect(page.locator("#search-mapping")).to_contain_text("free text")
    page.fill("#search", "nobody:here")
    expect(page.locator("#key-list li.empty")).to_have_text("No document matches.")


def test_ttl_set_and_cleared_in_the_editor(page: Page, studio: str, db: ferrumdb.FerrumDB) -> None:
    """A new document can get a TTL; the editor's "Never expire" clears one."""
    page.goto(studio + "#/new")
    page.fill("#new-key", "cache:1")
    page.fill("#new-value", '{"v": 1}')
    page.fill("#new-ttl", "90")
    page.click("#insert-doc")
    expect(page.locator("#doc-ttl-text")).to_contain_text("expires in")
    ttl = db.ttl("cache:1")
    assert ttl is not None and 0 < ttl <= 90
    page.click("#edit-doc")
    page.click("#doc-ttl-clear")
    page.click("#save-doc")
    expect(page.locator("#doc-ttl-text")).to_have_text("no expiry")
    assert db.ttl("cache:1") is None and db["cache:1"] == {"v": 1}


def test_query_relaxed_json_paging_and_projection(page: Page, studio: str) -> None:
    """Unquoted keys and single quotes parse; results page with a total; fields pick the columns."""
    page.goto(studio + "#/query")
    page.fill("#filter", "{name: 'user 3'}")
    page.click("#run-query")
    expect(page.locator("#results tbody tr")).to_have_count(1)
    page.fill("#filter", "{age: {$gte: 20},}")
    page.fill("#sort", "-age")
    page.fill("#fields", "name")
    page.fill("#limit", "10")
    page.click("#run-query")
    expect(page.locator("#result-count")).to_contain_text("1–10 of 30 documents")
    expect(page.locator("#results thead th")).to_have_text(["key", "name"])
    expect(page.locator("#results tbody tr").first.locator("td").first).to_have_text("user:29")
    page.click("#next-results")
    expect(page.locator("#result-count")).to_contain_text("11–20 of 30 documents")
    expect(page.locator("#results tbody tr").first.locator("td").first).to_have_text("user:19")
    page.click("#prev-results")
    expect(page.locator("#result-count")).to_contain_text("1–10 of 30 documents")


def test_failed_query_clears_old_results(page: Page, studio: str) -> None:
    """A parse error names the line and column; old results do not stay on screen."""
    page.goto(studio + "#/query")
    page.fill("#filter", "{age: 21}")
    page.click("#run-query")
    expect(page.locator("#results tbody tr")).to_have_count(1)
    page.fill("#filter", "{age:\n  {$gte 4}}")
    page.click("#run-query")
    expect(page.locator(".error-box")).to_contain_text('expected ":" after key "$gte"')
    expect(page.locator(".error-box")).to_contain_text("line 2, column 9")
    expect(page.locator("#results")).to_have_count(0)
    # A server-side error clears them too.
    page.fill("#filter", "{age: 21}")
    page.click("#run-query")
    expect(page.locator("#results tbody tr")).to_have_count(1)
    page.fill("#filter", "{age: {$nope: 1}}")
    page.click("#run-query")
    expect(page.locator(".error-box")).to_contain_text("$nope")
    expect(page.locator("#results")).to_have_count(0)


def test_wide_results_keep_their_last_column(page: Page, studio: str, db: ferrumdb.FerrumDB) -> None:
    """Every field gets a column, and the last one can be scrolled fully into view."""
    db["wide"] = {f"field{i:02d}": "x" * 30 for i in range(14)}
    page.goto(studio + "#/query")
    page.fill("#filter", "{field00: {$exists: true}}")
    page.click("#run-query")
    headers = page.locator("#results thead th")
    expect(headers).to_have_count(15)
    expect(headers.last).to_have_text("field13")
    fully_visible = page.evaluate(
        """() => {
            const wrap = document.querySelector('.table-wrap');
            wrap.scrollLeft = wrap.scrollWidth;
            const cell = document.querySelector('#results tbody td:last-child').getBoundingClientRect();
            const box = wrap.getBoundingClientRect();
            return cell.right <= box.right + 1 && cell.left >= box.left;
        }"""
    )
    assert fully_visible


def test_operations_compact_backup_export(
    page: Page, studio: str, db: ferrumdb.FerrumDB, tmp_path: Path
) -> None:
    """Compact asks first and shows progress to done; backup writes the file; export downloads JSONL."""
    for i in range(30):
        db[f"user:{i:02d}"] = {"name": f"again {i}"}
    garbage = db.stats()["file_bytes"] - db.stats()["live_bytes"]
    assert garbage > 0
    page.goto(studio + "#/ops")
    page.click("#op-compact")
    expect(page.locator("#modal")).to_be_visible()
    page.click("#modal-cancel")
    expect(page.locator("#op-status")).to_have_text("No operation yet.")
    page.click("#op-compact")
    page.click("#modal-ok")
    expect(page.locator("#op-status")).to_contain_text("compact · done")
    expect(page.locator("#op-bar")).to_have_attribute("style", re.compile("width: ?100"))
    assert db.stats()["file_bytes"] == db.stats()["live_bytes"]

    dest = tmp_path / "studio-backup.db"
    page.fill("#backup-path", str(dest))
    page.click("#op-backup")
    expect(page.locator("#modal-text")).to_contain_text(str(dest))
    page.click("#modal-ok")
    expect(page.locator("#op-status")).to_contain_text("backup · done")
    with ferrumdb.open(dest, read_only=True) as copy:
        assert copy["user:05"] == {"name": "again 5"}

    with page.expect_download() as info:
        page.click("#op-export")
    lines = [json.loads(line) for line in Path(info.value.path()).read_text().splitlines()]
    assert len(lines) == len(db)
    expect(page.locator("#op-status")).to_contain_text(f"export · done · {len(db)} records")


def test_metrics_by_operation_type_and_storage(page: Page, studio: str, db: ferrumdb.FerrumDB) -> None:
    """The metrics page charts get/set/delete/query rates and the file size and garbage."""
    page.goto(studio + "#/metrics")
    expect(page.locator("#ops-legend [data-series]")).to_have_count(4)
    for i in range(50):
        db.get(f"user:{i % 30:02d}")
        db.query({"age": i})
        db[f"user:{i % 30:02d}"] = {"n": i}
    del db["settings"]
    # The page's CSP forbids eval, so no wait_for_function: the charts
    # publish their newest figures as data attributes.
    positive = re.compile(r"^(?:[1-9]\d*(?:\.\d+)?|0\.\d*[1-9]\d*)(?:e[+-]?\d+)?$")
    chart = page.locator("#ops-chart")
    for series in ["get", "set", "delete", "query"]:
        expect(chart).to_have_attribute(f"data-{series}-peak", positive, timeout=15_000)
    expect(page.locator("#m-queries")).not_to_have_text("0", timeout=15_000)
    expect(page.locator("#storage-chart")).to_have_attribute("data-garbage", positive, timeout=15_000)
    expect(page.locator("#storage-legend")).to_contain_text("garbage")


def test_overview_tells_snapshot_from_live(page: Page, studio: str, db_path: Path, tmp_path: Path) -> None:
    """A live handle has the green dot; a snapshot gets a grey one and says it is not live."""
    page.goto(studio)
    expect(page.locator("#live-dot")).to_have_class("live on")
    expect(page.locator("#overview-mode")).to_have_text("The database this process has open, live.")
    other = tmp_path / "snap.db"
    with ferrumdb.open(other) as writer:
        writer["k"] = 1
    with open(str(other) + ".shm", "r+b") as f:
        f.truncate(1)
    with ferrumdb.open(other, read_only=True) as reader:
        page.goto(reader.studio(port=0))
        expect(page.locator("#live-dot")).to_have_class("live snapshot")
        expect(page.locator("#live-text")).to_contain_text("snapshot")
        expect(page.locator("#overview-mode")).to_contain_text("snapshot")
        expect(page.locator("#read-only-badge")).to_be_visible()


PAGES_AT_PHONE_WIDTH = ["#/overview", "#/keys", "#/doc/user%3A01", "#/new", "#/query", "#/indexes", "#/metrics", "#/ops"]

# Elements reaching past the viewport's right edge that no inner scrolling
# box (a table or JSON view with overflow auto, itself inside the viewport)
# contains. The page's own scroller (main) does not count: content that
# needs it to scroll sideways is the overflow this looks for.
OVERFLOWING = """() => {
    const vw = document.documentElement.clientWidth;
    const main = document.querySelector('main');
    const out = [];
    for (const node of document.body.querySelectorAll('*')) {
        const r = node.getBoundingClientRect();
        if (!r.width || (r.right <= vw + 0.5 && r.left >= -0.5)) continue;
        let boxed = false;
        for (let a = node.parentElement; a && a !== main && a !== document.body; a = a.parentElement) {
            const ox = getComputedStyle(a).overflowX;
            if (ox !== 'visible' && a.getBoundingClientRect().right <= vw + 0.5) { boxed = true; break; }
        }
        if (!boxed) out.push(node.tagName + (node.id ? '#' + node.id : '') + '.' + node.className + ' right=' + r.right);
    }
    return {
        scrollWidth: Math.max(document.documentElement.scrollWidth, main.scrollWidth - main.clientWidth + vw),
        vw: vw,
        out: out.slice(0, 10),
    };
}"""


@pytest.mark.parametrize("hash_", PAGES_AT_PHONE_WIDTH)
def test_layout_at_phone_width(browser: Browser, studio: str, db: ferrumdb.FerrumDB, hash_: str) -> None:
    """At 420 px wide nothing overflows the page sideways, long values included."""
    db["user:01"] = {"name": "a long name " * 20, "nested": {"deep": ["x" * 200]}, "url": "https://example.com/" + "p" * 150}
    context = browser.new_context(viewport={"width": 420, "height": 800})
    try:
        p = context.new_page()
        p.goto(studio + hash_)
        expect(p.locator("main h1")).to_be_visible()
        if hash_ == "#/query":
            p.fill("#filter", "{}")
            p.click("#run-query")
            expect(p.locator("#results")).to_be_visible()
        if hash_ == "#/keys":
            expect(p.locator("#key-list li").first).to_be_visible()
        report = p.evaluate(OVERFLOWING)
        assert report["out"] == [] and report["scrollWidth"] <= report["vw"], report
    finally:
        context.close()
