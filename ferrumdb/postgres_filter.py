"""Translate a FerrumDB filter into a PostgreSQL condition that selects a superset of its matches.

The PostgreSQL backend never trusts SQL with the final answer: rows the
condition selects are evaluated again by FerrumDB's own matcher (see
``ferrumdb.postgres``), so a filter means exactly the same thing on both
backends. The SQL only has to be *sound*: every document the filter matches
must satisfy it. Anything that cannot be translated soundly becomes ``TRUE``.

What is translated, and why it is a superset:

* equality and ``$in`` on a scalar (string, bool, a number below 2**53) along
  a path of plain keys. ``jsonb_path_query_array(doc, 'lax $."a"."b"')`` lists
  what the path reaches, entering arrays on the way exactly one level as
  FerrumDB does; the field equals ``v`` or is an array holding ``v`` exactly
  when that list contains ``v`` or an array containing ``v``. jsonb compares
  numbers by value, so ``1`` and ``1.0`` are equal as in FerrumDB. The same
  expression backs ``create_index`` (a GIN ``jsonb_path_ops`` index), so these
  conditions use it.
* ranges (``$gt $gte $lt $lte``) on a number below 2**53 or a string, as a
  ``jsonb_path_exists`` filter: jsonpath never compares across JSON types
  (FerrumDB's type brackets), compares strings by code point in a UTF-8
  database, and unwraps arrays one level (any element may match).
* ``$and`` (each translatable part), ``$or`` (only if every branch is).

Not translated (left to FerrumDB): ``None`` (it also matches a missing field),
``$ne $nin $not $nor $exists $regex $size $all $elemMatch``, arrays and objects
as values, paths with numeric segments (array positions), and numbers of
2**53 or more (a float's shortest decimal, which PostgreSQL stores, is not its
exact binary value there, and FerrumDB compares exact values).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = ["Translation", "translate", "path_expression", "translatable_path"]

# Beyond this a float's shortest decimal (what jsonb keeps) may differ from its
# exact value, which FerrumDB compares; below it both agree on order and equality.
_EXACT_LIMIT = 2**53

_RANGE_OPERATORS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


@dataclass
class Translation:
    """A sound SQL condition for a filter: ``sql`` with ``%s`` placeholders filled by ``params``."""

    sql: str = "TRUE"
    params: list[Any] = field(default_factory=list)
    #: Fields whose index expression the condition uses (for ``explain``).
    fields: list[str] = field(default_factory=list)
    #: False when some part of the filter was left entirely to FerrumDB.
    complete: bool = True


def translatable_path(path: str) -> bool:
    """Whether ``path`` is plain keys only (no empty or numeric segment), so jsonpath reaches what FerrumDB does."""
    if not isinstance(path, str) or not path or path.startswith("$"):
        return False
    return all(part and not part.isdigit() for part in path.split("."))


def jsonpath_of(path: str) -> str:
    """The lax jsonpath text for a dotted path: ``a.b`` -> ``$."a"."b"`` (keys quoted and escaped)."""
    return "$" + "".join("." + json.dumps(part) for part in path.split("."))


def path_expression(path: str) -> str:
    """The SQL expression listing every value ``path`` reaches in ``doc``; also the GIN index expression.

    It is spelled identically in indexes and queries so PostgreSQL matches them.
    """
    literal = jsonpath_of(path).replace("'", "''")
    return f"jsonb_path_query_array(doc, '{literal}'::jsonpath)"


def _scalar_json(value: Any) -> str | None:
    """``value`` as JSON text if it is a scalar the translation handles exactly, else ``None``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if abs(value) < _EXACT_LIMIT else None
    if isinstance(value, float):
        if value != value or abs(value) >= _EXACT_LIMIT or value in (float("inf"), float("-inf")):
            return None
        return format(Decimal(repr(value)), "f")
    if isinstance(value, str):
        return json.dumps(value)
    return None


def _equality(path: str, value: Any) -> Translation | None:
    text = _scalar_json(value)
    if text is None:
        return None
    expr = path_expression(path)
    return Translation(
        sql=f"({expr} @> %s::jsonb OR {expr} @> %s::jsonb)",
        params=[f"[{text}]", f"[[{text}]]"],
        fields=[path],
    )


def _range(path: str, operator: str, value: Any) -> Translation | None:
    if isinstance(value, bool):
        return None
    if not isinstance(value, (int, float, str)):
        return None
    text = _scalar_json(value)
    if text is None:
        return None
    jsonpath = f"{jsonpath_of(path)} ? (@ {_RANGE_OPERATORS[operator]} $v)"
    return Translation(
        sql="jsonb_path_exists(doc, %s::jsonpath, jsonb_build_object('v', %s::jsonb))",
        params=[jsonpath, text],
    )


def _field(path: str, condition: Any) -> Translation:
    if not translatable_path(path):
        return Translation(complete=False)
    is_operator_dict = isinstance(condition, dict) and condition and all(
        isinstance(k, str) and k.startswith("$") for k in condition
    )
    if not is_operator_dict:
        return _equality(path, condition) or Translation(complete=False)
    parts: list[Translation] = []
    complete = True
    for operator, operand in condition.items():
        part: Translation | None = None
        if operator == "$eq":
            part = _equality(path, operand)
        elif operator in _RANGE_OPERATORS:
            part = _range(path, operator, operand)
        elif operator == "$in" and isinstance(operand, list) and operand:
            branches = [_equality(path, v) for v in operand]
            if all(b is not None for b in branches):
                part = _any([b for b in branches if b is not None])
        if part is None:
            complete = False
        else:
            parts.append(part)
    result = _all(parts)
    result.complete = result.complete and complete
    return result


def _all(parts: list[Translation]) -> Translation:
    useful = [p for p in parts if p.sql != "TRUE"]
    if not useful:
        return Translation(complete=all(p.complete for p in parts))
    return Translation(
        sql="(" + " AND ".join(p.sql for p in useful) + ")",
        params=[x for p in useful for x in p.params],
        fields=[f for p in useful for f in p.fields],
        complete=all(p.complete for p in parts),
    )


def _any(parts: list[Translation]) -> Translation:
    if not parts or any(p.sql == "TRUE" for p in parts):
        return Translation(complete=False)
    return Translation(
        sql="(" + " OR ".join(p.sql for p in parts) + ")",
        params=[x for p in parts for x in p.params],
        fields=[f for p in parts for f in p.fields],
        complete=all(p.complete for p in parts),
    )


def translate(filter: Any) -> Translation:
    """A sound SQL condition for ``filter`` (``TRUE`` where nothing can be said in SQL).

    Malformed filters translate to ``TRUE`` here; FerrumDB's matcher rejects
    them with its usual ``ValueError`` when the rows are evaluated.
    """
    if not isinstance(filter, dict):
        return Translation(complete=filter is None)
    parts: list[Translation] = []
    for key, condition in filter.items():
        if key == "$and" and isinstance(condition, list):
            parts.append(_all([translate(c) for c in condition]))
        elif key == "$or" and isinstance(condition, list):
            parts.append(_any([translate(c) for c in condition]))
        elif isinstance(key, str) and key.startswith("$"):
            parts.append(Translation(complete=False))
        else:
            parts.append(_field(key, condition))
    return _all(parts)
