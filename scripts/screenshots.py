"""Screenshots of every Ferrum Studio page for README (docs/screenshots/*.png).

Fills a demo database, starts Studio on a free port, drives headless Chromium
with Playwright and saves one PNG per page. Needs `pip install playwright`
and Debian's `chromium` (or CHROMIUM=/path/to/chrome):

    python scripts/screenshots.py [OUT_DIR]
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from pathlib import Path

import ferrumdb
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

CITIES = ["Paris", "Lyon", "Berlin", "Lisbon", "Oslo", "Turin"]
ROLES = ["admin", "editor", "viewer"]


def fill(db: ferrumdb.FerrumDB) -> None:
    """A small but realistic database: users, orders, sessions, settings."""
    for i in range(1, 61):
        db[f"user:{i:03d}"] = {
            "name": f"User {i}",
            "email": f"user{i}@example.com",
            "role": ROLES[i % 3],
            "score": (i * 37) % 100,
            "address": {"city": CITIES[i % len(CITIES)], "zip": f"{75000 + i}"},
            "tags": ["beta"] if i % 4 == 0 else [],
        }
    for i in range(1, 41):
        db[f"order:2026:{i:04d}"] = {
            "user": f"user:{(i * 7) % 60 + 1:03d}",
            "total": round(9.5 * i, 2),
            "items": [{"sku": f"SKU-{i % 9}", "qty": 1 + i % 3}],
            "status": "shipped" if i % 3 else "pending",
        }
    for i in range(12):
        db.set(f"session:{i:x}", {"user": f"user:{i + 1:03d}", "ip": f"127.0.0.{i + 1}"}, ttl=3600)
    db["counter:visits"] = 48213
    db["flags:beta"] = True
    db.set("motd", "Maintenance window tonight from 22:00 UTC", ttl=5400)
    db["settings:theme"] = {"dark": False, "accent": "#b7410e"}
    db["settings:features"] = {"search": True, "export": True}
    db.create_index("role")
    db.create_index("address.city")
    # Some garbage for the live-vs-garbage bar.
    for i in range(1, 21):
        db[f"user:{i:03d}"] = {**db[f"user:{i:03d}"], "score": i}


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, ferrumdb.open(Path(tmp) / "demo.db") as db:
        fill(db)
        url = db.studio(port=0)
        stop = threading.Event()

        def traffic() -> None:
            # A little load so the charts have something to show.
            n = 0
            while not stop.wait(0.02):
                n += 1
                db.get(f"user:{n % 60 + 1:03d}")
                if n % 5 == 0:
                    db[f"metrics:tick:{n % 10}"] = {"n": n}

        worker = threading.Thread(target=traffic, daemon=True)
        worker.start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM)
                page = browser.new_page(viewport={"width": 1280, "height": 800}, device_scale_factor=1)
                page.goto(url + "#/overview")
                page.wait_for_selector("#o-keys")
                page.wait_for_timeout(4000)  # let the chart collect samples (screenshots only)
                page.screenshot(path=str(out / "overview.png"))

                # The list's first rows mix types, and one has a TTL.
                page.goto(url + "#/keys")
                page.wait_for_selector("#key-list li.entry")
                for group in ["order:", "settings:"]:
                    page.locator("#key-tree summary", has_text=group).first.click()
                page.wait_for_selector("#key-tree a.leaf[title='settings:theme']")
                page.evaluate("document.getElementById('main').scrollTo(0, 0)")
                page.screenshot(path=str(out / "keys.png"))

                page.goto(url + "#/doc/session%3A3")
                page.wait_for_selector("#doc-body pre")
                page.screenshot(path=str(out / "document.png"))
                page.click("#edit-doc")
                page.wait_for_selector("#doc-editor")
                page.screenshot(path=str(out / "document-edit.png"))

                page.goto(url + "#/query")
                page.fill("#filter", "{role: 'admin', score: {$gte: 20}}")
                page.fill("#sort", "-score")
                page.fill("#fields", "name, email, score, address.city")
                page.fill("#limit", "8")
                page.click("#run-query")
                page.wait_for_selector("#results")
                page.screenshot(path=str(out / "query.png"))

                page.goto(url + "#/indexes")
                page.wait_for_selector("#index-list table")
                page.screenshot(path=str(out / "indexes.png"))

                page.goto(url + "#/metrics")
                page.wait_for_selector("#m-sets")
                page.wait_for_timeout(6000)
                page.screenshot(path=str(out / "metrics.png"))

                page.goto(url + "#/ops")
                page.click("#op-compact")
                page.click("#modal-ok")
                page.wait_for_selector("#op-status:has-text('compact · done')")
                page.wait_for_timeout(500)  # the bar's width transition (screenshots only)
                page.screenshot(path=str(out / "operations.png"))

                phone = browser.new_page(viewport={"width": 420, "height": 860}, device_scale_factor=1)
                phone.goto(url + "#/keys?q=role%3Aadmin")
                phone.wait_for_selector("#key-list li.entry")
                phone.screenshot(path=str(out / "phone-keys.png"))
                browser.close()
        finally:
            stop.set()
            worker.join()
    print(f"screenshots written to {out}")


if __name__ == "__main__":
    main()
