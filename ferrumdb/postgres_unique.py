"""Unique indexes on PostgreSQL with the file backend's rule, exactly.

The file backend's rule (``FieldIndex::claims`` in ``rust/documents/field.rs``):
a document *claims* every distinct value its path reaches (the value at the
end of the path, and each element when that value is an array; through arrays
of objects on the way), or ``null`` when it reaches none. Two live documents
may not share a claim. So ``{"tags": ["a", "b"]}`` and ``{"tags": "a"}``
collide on ``"a"``, ``1`` and ``1.0`` are one value, and a missing field
collides with ``null``. A unique expression index on the field's value cannot
say that (one row, one value), so each table with a unique index gets a
*claims* table::

    <table>_claims (field text, claim jsonb, key text), UNIQUE (field, claim) DEFERRABLE INITIALLY DEFERRED

kept by a row trigger on the documents table: every insert, update and
delete of a document replaces its claims, whoever writes it (any process, any
FerrumDB version with this schema, even plain SQL). The constraint is checked
at commit, so a transaction may swap two values between documents, as on a
file. A violation is a ``UniqueViolation`` naming ``(field, claim)``, which
:class:`~ferrumdb.postgres.PostgresDB` turns into ``DuplicateKeyError`` with
the file backend's message.

Numbers: ``jsonb`` compares numbers as decimals, the file backend compares
their exact values. They differ only for a float of magnitude 2^53 or more
written in its shortest form (``1.152921504606847e18`` is 2^60 exactly), so
the SQL function ``ferrumdb_v2_claim`` replaces such a float by its exact integer.

The trigger (and its function ``<table>_keep_claims``, written out per
table with the fields as constants so its statements are planned once)
exists only while some unique index does, so writes to a table without one
pay nothing. An update that leaves the indexed values alone writes nothing
to the claims table.
"""

from __future__ import annotations

import json
import re
from typing import Any

try:
    from psycopg import sql as pg_sql
except ImportError:  # pragma: no cover - ferrumdb.postgres raises the ImportError naming the extra
    pg_sql = None  # type: ignore[assignment]

__all__ = [
    "install",
    "claims_table",
    "add_unique",
    "remove_unique",
    "refresh_trigger",
    "duplicate_details",
]

#: SQL functions shared by every FerrumDB table of a database (versioned names:
#: a later layout adds new functions instead of changing these under old clients).
FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION ferrumdb_v2_reach(v jsonb, path text[]) RETURNS SETOF jsonb
LANGUAGE plpgsql IMMUTABLE STRICT AS $fn$
DECLARE
    seg text;
    item jsonb;
BEGIN
    IF coalesce(array_length(path, 1), 0) = 0 THEN
        RETURN NEXT v;
        IF jsonb_typeof(v) = 'array' THEN
            RETURN QUERY SELECT jsonb_array_elements(v);
        END IF;
        RETURN;
    END IF;
    seg := path[1];
    IF jsonb_typeof(v) = 'object' THEN
        IF v ? seg THEN
            RETURN QUERY SELECT * FROM ferrumdb_v2_reach(v -> seg, path[2:]);
        END IF;
    ELSIF jsonb_typeof(v) = 'array' THEN
        IF seg ~ '^(0|[1-9][0-9]{0,8})$' THEN
            IF seg::int < jsonb_array_length(v) THEN
                RETURN QUERY SELECT * FROM ferrumdb_v2_reach(v -> seg::int, path[2:]);
            END IF;
        ELSIF NOT (seg ~ '^[1-9][0-9]*$' AND length(seg) <= 20 AND seg::numeric <= 18446744073709551615) THEN
            -- Not an index (a usize, as the file backend parses it): the segment applies to each object element.
            FOR item IN SELECT jsonb_array_elements(v) LOOP
                IF jsonb_typeof(item) = 'object' THEN
                    RETURN QUERY SELECT * FROM ferrumdb_v2_reach(item, path);
                END IF;
            END LOOP;
        END IF;
    END IF;
    RETURN;
END
$fn$;

CREATE OR REPLACE FUNCTION ferrumdb_v2_exact(n numeric) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE STRICT AS $fn$
DECLARE
    m float8 := n::float8;
    e int := 0;
    r numeric;
BEGIN
    -- Every double of magnitude >= 2^53 is an integer M * 2^e with |M| < 2^53.
    WHILE abs(m) >= 9007199254740992 LOOP
        m := m / 2;
        e := e + 1;
    END LOOP;
    r := m::bigint::numeric;
    FOR i IN 1..e LOOP
        r := r * 2;
    END LOOP;
    RETURN r;
END
$fn$;

CREATE OR REPLACE FUNCTION ferrumdb_v2_claim(v jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT AS $fn$
DECLARE
    text_form text;
BEGIN
    CASE jsonb_typeof(v)
    WHEN 'number' THEN
        text_form := v::text;
        IF strpos(text_form, '.') > 0 AND abs(v::numeric) >= 9007199254740992 THEN
            RETURN to_jsonb(ferrumdb_v2_exact(v::numeric));
        END IF;
        RETURN v;
    WHEN 'array' THEN
        IF v::text ~ '[0-9]{16}\.' THEN
            RETURN (SELECT coalesce(jsonb_agg(ferrumdb_v2_claim(x) ORDER BY n), '[]'::jsonb)
                    FROM jsonb_array_elements(v) WITH ORDINALITY AS e(x, n));
        END IF;
        RETURN v;
    WHEN 'object' THEN
        IF v::text ~ '[0-9]{16}\.' THEN
            RETURN (SELECT coalesce(jsonb_object_agg(k, ferrumdb_v2_claim(x)), '{}'::jsonb)
                    FROM jsonb_each(v) AS e(k, x));
        END IF;
        RETURN v;
    ELSE
        RETURN v;
    END CASE;
END
$fn$;

CREATE OR REPLACE FUNCTION ferrumdb_v2_canon(v jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $fn$
    -- Only a float of magnitude >= 2^53 needs rewriting, and its text has 16 digits before a point.
    SELECT CASE WHEN jsonb_typeof(v) IN ('number', 'array', 'object') AND v::text ~ '[0-9]{16}\.'
                THEN ferrumdb_v2_claim(v) ELSE v END
$fn$;

CREATE OR REPLACE FUNCTION ferrumdb_v2_walk_claims(doc jsonb, path text[]) RETURNS SETOF jsonb
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT r FROM ferrumdb_v2_reach(doc, path) AS r
    UNION ALL
    SELECT 'null'::jsonb WHERE NOT EXISTS (SELECT 1 FROM ferrumdb_v2_reach(doc, path))
$fn$;

-- Whether #> answers the walk exactly: no segment could be read as an array index (so #> enters
-- objects only; a segment holding chr(1) may be misread as several, which only costs the slow
-- path), and it found a value, or the path is one member of an object (missing: null).
CREATE OR REPLACE FUNCTION ferrumdb_v2_direct(doc jsonb, path text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT array_to_string(path, chr(1)) !~ ('(^|' || chr(1) || ')\s*[-+]?[0-9]+(' || chr(1) || '|$)')
        AND (doc #> path IS NOT NULL OR (cardinality(path) = 1 AND jsonb_typeof(doc) = 'object'))
$fn$;

-- A document's claims at a path (see the module doc). Plain SQL, so the planner inlines it into
-- the trigger's statement; the walk in plpgsql runs only for paths #> cannot answer.
CREATE OR REPLACE FUNCTION ferrumdb_v2_claims(doc jsonb, path text[]) RETURNS SETOF jsonb
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT DISTINCT ferrumdb_v2_canon(claimed.c) FROM (
        SELECT coalesce(doc #> path, 'null'::jsonb) AS c WHERE ferrumdb_v2_direct(doc, path)
        UNION ALL
        SELECT e FROM jsonb_array_elements(
            CASE WHEN ferrumdb_v2_direct(doc, path) AND jsonb_typeof(doc #> path) = 'array' THEN doc #> path END
        ) AS e
        UNION ALL
        SELECT w FROM ferrumdb_v2_walk_claims(doc, path) AS w WHERE NOT ferrumdb_v2_direct(doc, path)
    ) AS claimed
$fn$;
"""


#: A path segment PostgreSQL's ``#>`` might read as an array index (wider than it needs to be).
_INDEX_LIKE = re.compile(r"[\s+\-0-9]*[0-9][\s+\-0-9]*")


def claims_table(table: str) -> str:
    """The claims table of the documents table ``table``."""
    return f"{table}_claims"


def _ident(name: str) -> str:
    return pg_sql.Identifier(name).as_string(None)


def install(conn: Any, table: str) -> None:
    """Create the shared functions and ``table``'s claims table (idempotent; caller holds the table's lock)."""
    # The functions are shared by every table: two tables' first unique indexes must not
    # replace them at once ("tuple concurrently updated").
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('ferrumdb:functions'))")
    conn.execute(FUNCTIONS)
    claims = claims_table(table)
    conn.execute(
        f'CREATE TABLE IF NOT EXISTS {_ident(claims)} (field text NOT NULL, claim jsonb NOT NULL, key text COLLATE "C" NOT NULL, '
        f"CONSTRAINT {_ident(claims + '_unique')} UNIQUE (field, claim) DEFERRABLE INITIALLY DEFERRED)"
    )
    # The trigger looks a document's claims up by (key, field): an index that answers exactly
    # that, so no plan (even one made before statistics exist) combines it with the unique one.
    conn.execute(f"CREATE INDEX IF NOT EXISTS {_ident(claims + '_key_field')} ON {_ident(claims)} (key, field)")


def _field_claims_sql(field: str, claims: str) -> str:
    """The trigger's statements for one field: compute NEW's claims, rewrite them only if they changed."""
    segments = field.split(".")
    literal = pg_sql.Literal(field).as_string(None)
    path = "ARRAY[" + ", ".join(pg_sql.Literal(s).as_string(None) for s in segments) + "]::text[]"
    # #> answers the walk exactly when it enters objects only: no segment it could read as an
    # array index (PostgreSQL reads " 1", "+1" and "-1" as indexes too; this test errs wide).
    direct = "FALSE" if any(_INDEX_LIKE.fullmatch(s) for s in segments) else "TRUE"
    single = "TRUE" if len(segments) == 1 else "FALSE"
    return f"""
    v := NEW.doc #> {path};
    IF {direct} AND (v IS NOT NULL OR ({single} AND jsonb_typeof(NEW.doc) = 'object')) THEN
        IF v IS NULL THEN
            cs := ARRAY['null'::jsonb];
        ELSIF jsonb_typeof(v) = 'array' THEN
            cs := ARRAY(SELECT DISTINCT ferrumdb_v2_canon(x) FROM (SELECT v AS x UNION ALL SELECT jsonb_array_elements(v)) AS e);
        ELSE
            cs := ARRAY[ferrumdb_v2_canon(v)];
        END IF;
    ELSE
        cs := ARRAY(SELECT DISTINCT ferrumdb_v2_canon(x) FROM ferrumdb_v2_walk_claims(NEW.doc, {path}) AS x);
    END IF;
    held := ARRAY(SELECT claim FROM {claims} WHERE key = NEW.key AND field = {literal});
    IF NOT (cs @> held AND held @> cs) THEN
        DELETE FROM {claims} WHERE key = NEW.key AND field = {literal};
        INSERT INTO {claims} (field, claim, key) SELECT {literal}, x, NEW.key FROM unnest(cs) AS x;
    END IF;
"""


def refresh_trigger(conn: Any, table: str, unique_fields: list[str]) -> None:
    """(Re)create the trigger keeping claims for ``unique_fields``, or drop it when there are none.

    Each table gets a trigger function of its own, its statements written out
    per field with the table, field and path as constants, so PostgreSQL plans
    them once per session (dynamic SQL would be planned on every row). The
    common paths (a member, or members of members) are read with ``#>``; the
    full walk runs only where that cannot answer. An update whose claims are
    unchanged writes nothing to the claims table.
    """
    trigger = _ident(f"{table}_claims_trigger")
    function = _ident(f"{table}_keep_claims")
    conn.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {_ident(table)}")
    if not unique_fields:
        conn.execute(f"DROP FUNCTION IF EXISTS {function}()")
        return
    claims = _ident(claims_table(table))
    per_field = "".join(_field_claims_sql(field, claims) for field in sorted(unique_fields))
    body = f"""
DECLARE
    v jsonb;
    cs jsonb[];
    held jsonb[];
BEGIN
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.key <> NEW.key) THEN
        DELETE FROM {claims} WHERE key = OLD.key;
        IF TG_OP = 'DELETE' THEN
            RETURN NULL;
        END IF;
    END IF;
    IF NEW.key = '' OR (TG_OP = 'UPDATE' AND OLD.key = NEW.key AND OLD.doc::text = NEW.doc::text) THEN
        RETURN NULL;  -- the version row, or only the expiry changed
    END IF;
{per_field}
    RETURN NULL;
END
"""
    tag = "$claims$"
    while tag in body:  # a field name holding the quote tag
        tag = tag[:-1] + "x$"
    conn.execute(f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS {tag}{body}{tag}")
    conn.execute(
        f"CREATE TRIGGER {trigger} AFTER INSERT OR UPDATE OR DELETE ON {_ident(table)} "
        f"FOR EACH ROW EXECUTE FUNCTION {function}()"
    )


def add_unique(conn: Any, table: str, field: str) -> tuple[str, str, str] | None:
    """Fill ``field``'s claims from every document; a duplicate as ``(value, key, other_key)``, else None.

    Runs inside the caller's transaction (which must roll back on a duplicate).
    Expired rows must have been purged first.
    """
    claims = _ident(claims_table(table))
    conn.execute(f"DELETE FROM {claims} WHERE field = %s", (field,))
    conn.execute(
        f"INSERT INTO {claims} (field, claim, key) "
        f"SELECT %s, c, t.key FROM {_ident(table)} AS t, ferrumdb_v2_claims(t.doc, %s) AS c WHERE t.key > ''",
        (field, field.split(".")),
    )
    conn.execute(f"ANALYZE {claims}")  # plans made from now on see its real size
    row = conn.execute(
        f"SELECT claim::text, min(key), max(key) FROM {claims} WHERE field = %s GROUP BY claim HAVING count(*) > 1 "
        "ORDER BY min(key) LIMIT 1",
        (field,),
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]), str(row[2]))


def remove_unique(conn: Any, table: str, field: str) -> None:
    """Forget ``field``'s claims."""
    conn.execute(f"DELETE FROM {_ident(claims_table(table))} WHERE field = %s", (field,))


def duplicate_details(conn: Any, table: str, detail: str, unique_fields: list[str]) -> tuple[str, str, str | None] | None:
    """``(field, value, holder)`` from a claims violation's detail text, the holder looked up; None if not one.

    PostgreSQL's detail reads ``Key (field, claim)=(<field>, <claim>) already exists.``
    """
    head = "Key (field, claim)=("
    tail = ") already exists."
    if not (detail.startswith(head) and detail.rstrip().endswith(tail)):
        return None
    body = detail.rstrip()[len(head) : -len(tail)]
    for field in sorted(unique_fields, key=len, reverse=True):
        if body.startswith(field + ", "):
            claim = body[len(field) + 2 :]
            try:
                value = json.dumps(json.loads(claim), ensure_ascii=False, separators=(",", ":"))
            except ValueError:
                value = claim
            holder = None
            try:
                row = conn.execute(
                    f"SELECT key FROM {_ident(claims_table(table))} WHERE field = %s AND claim = %s::jsonb LIMIT 1",
                    (field, claim),
                ).fetchone()
                holder = None if row is None else str(row[0])
            except Exception:  # a message helper must not fail
                holder = None
            return field, value, holder
    return None
