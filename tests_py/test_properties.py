"""A database behaves like a plain dict across set, delete, get, reopen and compact (Hypothesis state machine)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import ferrumdb

# Keys: a small alphabet so rules hit the same keys often, plus some non-ASCII.
keys = st.text(alphabet="abc:é\U0001f600", min_size=1, max_size=4)

# Every value rule of README "Use it from Python" that round-trips: the store must keep each value exactly.
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)


def _canon(value: Any) -> str:
    """Type-exact comparison form (1 != 1.0 != True), order-sensitive for dict keys."""
    return json.dumps(value)


class DictShadow(RuleBasedStateMachine):
    """Every step is applied to the database and to a dict; they must always agree."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="ferrumdb-hyp-"))
        self.path = self.dir / "prop.db"
        self.db = ferrumdb.open(self.path, fsync="never")
        self.model: dict[str, Any] = {}

    @rule(key=keys, value=values)
    def set(self, key: str, value: Any) -> None:
        self.db[key] = value
        self.model[key] = value

    @rule(key=keys)
    def delete(self, key: str) -> None:
        assert self.db.delete(key) is (key in self.model)
        self.model.pop(key, None)

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def delete_existing(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.model)))
        del self.db[key]
        del self.model[key]

    @rule(key=keys)
    def get(self, key: str) -> None:
        if key in self.model:
            assert _canon(self.db[key]) == _canon(self.model[key])
        else:
            assert self.db.get(key, "missing") == "missing"

    @rule()
    def reopen(self) -> None:
        self.db.close()
        self.db = ferrumdb.open(self.path, fsync="never")

    @rule()
    def compact(self) -> None:
        self.db.compact()

    @invariant()
    def same_keys_in_order(self) -> None:
        assert self.db.keys() == sorted(self.model, key=lambda k: k.encode())
        assert len(self.db) == len(self.model)

    def teardown(self) -> None:
        try:
            items = {k: _canon(v) for k, v in self.db.items()}
            assert items == {k: _canon(v) for k, v in self.model.items()}
        finally:
            self.db.close()
            shutil.rmtree(self.dir, ignore_errors=True)


DictShadow.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_database_shadows_dict = DictShadow.TestCase
test_database_shadows_dict.__doc__ = "A database agrees with a dict after any sequence of set/delete/get/reopen/compact."
