"""What a FerrumDB handle looks like in Jupyter: the HTML summary, Studio's URL as a link, and
``to_pandas``. Kept in one module so that ``db.py`` stays about the mapping, and so that pandas
is imported only when ``to_pandas`` is called (it is optional: ``pip install pandas``).

Everything shown is bounded (a few documents, each preview cut short) and HTML-escaped: a
notebook renders whatever the database holds, and keys and values are user data."""

from __future__ import annotations

import html
import importlib
import json
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .db import FerrumDB

#: How many documents the HTML summary shows.
SAMPLE_DOCUMENTS = 5

#: How many characters of a document's JSON the summary shows before cutting it with "…".
PREVIEW_CHARS = 200


_MISSING = object()


class Queryable(Protocol):
    """What ``to_pandas`` needs: ``query`` as both backends (file and PostgreSQL) have it."""

    def query(
        self, filter: dict[str, Any] | None = None, *, limit: int | None = None, fields: list[str] | None = None
    ) -> list[tuple[str, Any]]: ...


class StudioURL(str):
    """The URL ``db.studio()`` returns: a ``str`` everywhere, a clickable link in a notebook."""

    __slots__ = ()

    def _repr_html_(self) -> str:
        url = html.escape(self, quote=True)
        return f'<a href="{url}" target="_blank" rel="noopener">Ferrum Studio: {html.escape(self)}</a>'


def preview(value: Any) -> str:
    """One document as compact JSON, cut to :data:`PREVIEW_CHARS` characters."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def summary_html(db: FerrumDB) -> str:
    """The table Jupyter shows for ``db``: path, state, sizes, indexes and a few documents."""
    esc = html.escape
    rows: list[tuple[str, str]] = [("path", db.path)]
    samples: list[tuple[str, str]] = []
    if db.closed:
        rows.append(("state", "closed"))
    else:
        s = db.stats()
        rows += [
            ("state", "open (read-only)" if db.read_only else "open"),
            ("keys", f"{s['keys']:,}"),
            ("file size", f"{s['file_bytes']:,} bytes"),
            ("live data", f"{s['live_bytes']:,} bytes"),
            ("fsync", db.fsync),
        ]
        indexes = [f"{field} (unique)" if unique else field for field, unique in db._index_definitions()]
        rows.append(("indexes", ", ".join(indexes) if indexes else "none"))
        # Keys first, then only the documents shown: scan() would read a whole page of values.
        for key in db:
            value = db.get(key, _MISSING)
            if value is not _MISSING:  # deleted since the key was listed
                samples.append((key, preview(value)))
            if len(samples) == SAMPLE_DOCUMENTS:
                break
        if samples and s["keys"] > len(samples):
            rows.append(("shown", f"the first {len(samples)} documents of {s['keys']:,}"))
    th = "<th style='text-align:left'>"
    body = "".join(f"<tr>{th}{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    docs = "".join(f"<tr><td>{esc(k)}</td><td><code>{esc(v)}</code></td></tr>" for k, v in samples)
    if docs:
        docs = f"<table><thead><tr>{th}key</th>{th}document</th></tr></thead><tbody>{docs}</tbody></table>"
    return f"<div><table><caption>FerrumDB</caption>{body}</table>{docs}</div>"


def to_pandas(
    db: Queryable,
    filter: dict[str, Any] | None = None,  # noqa: A002  (the name db.query uses)
    fields: list[str] | None = None,
    limit: int | None = None,
) -> Any:  # a pandas.DataFrame; pandas is optional and untyped
    """The matching documents as a DataFrame indexed by key (see ``FerrumDB.to_pandas``)."""
    try:
        # Imported by name: pandas is optional, and mypy need not know it (it has no stubs here).
        pandas = importlib.import_module("pandas")
    except ImportError as e:
        raise ImportError("to_pandas() needs pandas: pip install pandas") from e
    rows = db.query(filter, fields=fields, limit=limit)  # None: every document
    # Nested objects become dotted columns ("address.city"), the paths `fields` and filters use;
    # a document that is not an object goes in a "value" column.
    records = [doc if isinstance(doc, dict) else {"value": doc} for _, doc in rows]
    frame = pandas.json_normalize(records) if records else pandas.DataFrame()
    frame.index = pandas.Index([key for key, _ in rows], name="key", dtype=object)
    return frame
