"""``create_index(field, progress=True)`` builds the same index as without a bar."""

from __future__ import annotations

import ferrumdb


def test_progress_build_gives_the_same_index(db: ferrumdb.FerrumDB) -> None:
    """With progress=True the index is built and used exactly as without it."""
    for i in range(3000):
        db[f"k{i:04}"] = {"group": f"g{i % 3}"}
    db.create_index("group", progress=True)
    assert db.indexes() == ["group"]
    assert len(db.find("group", "g1")) == 1000
    assert db.explain({"group": "g1"})["index"] == "group"
