"""A handle in Jupyter (ferrumdb/_notebook.py): the HTML summary shows the indexes and a few
documents, bounded and escaped; ``db.studio()`` is a str that renders as a link; ``to_pandas``
gives a DataFrame, or an ImportError with the pip command when pandas is missing."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

import ferrumdb
from ferrumdb import _notebook
from tests_py.pg_support import pg_db, pg_url  # noqa: F401  (fixtures)


def cells(html: str) -> list[str]:
    return re.findall(r"<td>(.*?)</td>", html)


def test_summary_shows_indexes_and_a_few_documents(db: ferrumdb.FerrumDB) -> None:
    for i in range(20):
        db[f"user:{i:02d}"] = {"n": i, "email": f"u{i}@x.io"}
    db.create_index("n")
    db.create_index("email", unique=True)
    html = db._repr_html_()
    assert "<td>email (unique), n</td>" in html
    shown = [k for k in (f"user:{i:02d}" for i in range(20)) if f"<td>{k}</td>" in html]
    assert shown == [f"user:{i:02d}" for i in range(_notebook.SAMPLE_DOCUMENTS)]
    assert "the first 5 documents of 20" in html
    assert "<code>{&quot;n&quot;:0,&quot;email&quot;:&quot;u0@x.io&quot;}</code>" in html


def test_summary_without_indexes_or_documents(db: ferrumdb.FerrumDB) -> None:
    html = db._repr_html_()
    assert "<td>none</td>" in html
    assert "<code>" not in html and "shown" not in html


def test_summary_escapes_keys_and_values(db: ferrumdb.FerrumDB) -> None:
    db["<b>k</b>"] = {"html": "<script>alert(1)</script>", "amp": "a&b"}
    html = db._repr_html_()
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;b&gt;k&lt;/b&gt;" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "a&amp;b" in html


def test_summary_is_bounded_whatever_the_data(db: ferrumdb.FerrumDB) -> None:
    big = {"text": "x" * 1_000_000}
    for i in range(1000):
        db[f"k{i:04d}"] = big if i < 10 else i
    html = db._repr_html_()
    assert len(html) < 5000
    previews = [c for c in cells(html) if c.startswith("<code>")]
    assert len(previews) == _notebook.SAMPLE_DOCUMENTS
    assert all(len(p) <= len("<code></code>") + _notebook.PREVIEW_CHARS + 20 for p in previews)
    assert previews[0].endswith("…</code>")


def test_summary_of_a_closed_handle(db_path: Path) -> None:
    db = ferrumdb.open(db_path)
    db["a"] = 1
    db.close()
    html = db._repr_html_()
    assert "<td>closed</td>" in html and "<code>" not in html


def test_studio_returns_a_str_that_renders_as_a_link(db: ferrumdb.FerrumDB) -> None:
    url = db.studio(port=0)
    try:
        assert isinstance(url, str) and url.startswith("http://127.0.0.1:")
        assert url == str(url)
        assert url._repr_html_() == f'<a href="{url}" target="_blank" rel="noopener">Ferrum Studio: {url}</a>'
        assert db.studio(port=0) == url  # same arguments: the running one, still a link
        assert isinstance(db.studio(port=0), _notebook.StudioURL)
    finally:
        db.stop_studio()


def test_studio_link_escapes_the_url() -> None:
    link = _notebook.StudioURL('http://h:1/?token=a&b"<x>')._repr_html_()
    assert 'href="http://h:1/?token=a&amp;b&quot;&lt;x&gt;"' in link
    assert "<x>" not in link


def test_to_pandas_without_pandas_says_how_to_install_it(db: ferrumdb.FerrumDB, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # makes `import pandas` raise ImportError
    with pytest.raises(ImportError, match="pip install pandas"):
        db.to_pandas()


def test_to_pandas(db: ferrumdb.FerrumDB) -> None:
    pandas = pytest.importorskip("pandas")
    db["u1"] = {"name": "ann", "age": 34, "address": {"city": "Oslo"}}
    db["u2"] = {"name": "bob", "age": 27}
    db["n"] = 5
    frame = db.to_pandas()
    assert isinstance(frame, pandas.DataFrame)
    assert list(frame.index) == ["n", "u1", "u2"] and frame.index.name == "key"
    assert frame.loc["u1", "address.city"] == "Oslo"
    assert frame.loc["n", "value"] == 5
    older = db.to_pandas({"age": {"$gte": 30}}, fields=["name", "address.city"])
    assert list(older.index) == ["u1"]
    assert sorted(older.columns) == ["address.city", "name"]
    assert len(db.to_pandas(limit=2)) == 2
    empty = db.to_pandas({"age": 99})
    assert len(empty) == 0 and empty.index.name == "key"


def test_to_pandas_on_postgresql(pg_db: Any) -> None:
    """The same call on the PostgreSQL backend gives the same frame."""
    pandas = pytest.importorskip("pandas")
    pg_db["u1"] = {"name": "ann", "address": {"city": "Oslo"}}
    pg_db["u2"] = {"name": "bob"}
    frame = pg_db.to_pandas({"name": "ann"}, fields=["address.city"])
    assert isinstance(frame, pandas.DataFrame)
    assert list(frame.index) == ["u1"] and frame.loc["u1", "address.city"] == "Oslo"
