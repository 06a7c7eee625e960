"""A draft contract from a live table: `govex contract infer`.

Why: writing a JSON Schema by hand for a 40-column table is slow and error-prone; the
database already knows the types, nullability and lengths, and a bounded sample of rows shows
which columns hold resident IDs, mobile numbers or credit codes. The result is a draft for a
person to review: PII categories and checks are suggestions, never applied silently.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

import contracts
from govex.errors import DeclarationError
from quality.standards import is_valid_cn_mobile_phone, is_valid_resident_id, is_valid_uscc

SCHEMA_DRAFT = "https://json-schema.org/draft/2020-12/schema"
# Rows read to suggest checks: enough to see a pattern, one cheap read on any table.
DEFAULT_SAMPLE_ROWS = 1000

# Column-name hints (lowercase; pinyin abbreviations as Chinese systems name them).
_ID_NAMES = re.compile(r"(^|_)(sfzh|sfz|id_no|id_number|id_card|idcard|zjhm|cert_no)($|_)")
_PHONE_NAMES = re.compile(r"(phone|mobile|(^|_)(sjh|sjhm|lxdh|dh|tel)($|_))")
_USCC_NAMES = re.compile(r"(^|_)(uscc|tyshxydm|shxydm|credit_code)($|_)")
_PERSON_NAMES = re.compile(r"^(name|xm|xingming|full_name|person_name|.*_xm)$")
_ADDRESS_NAMES = re.compile(r"(address|addr|(^|_)(dz|zz|jzdz|hjdz)($|_))")
_EMAIL_NAMES = re.compile(r"(email|(^|_)(mail|yx)($|_))")


def infer_contract(
    url: str,
    table: str,
    *,
    name: str | None = None,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
) -> dict[str, Any]:
    """The draft contract of `table` on the database at `url` (a resolved SQLAlchemy URL)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            if not inspector.has_table(table):
                msg = f"table '{table}' does not exist on that connection"
                raise DeclarationError(msg, value=table)
            columns = inspector.get_columns(table)
            primary = inspector.get_pk_constraint(table).get("constrained_columns") or []
            samples = _sample(conn, table, [c["name"] for c in columns], sample_rows)
    except sa.exc.SQLAlchemyError as error:
        msg = f"could not read table '{table}' ({error.__class__.__name__})"
        raise DeclarationError(msg, value=table) from error
    finally:
        engine.dispose()
    properties: dict[str, Any] = {}
    required: list[str] = []
    for column in columns:
        col_name = str(column["name"])
        nullable = bool(column.get("nullable", True)) and col_name not in primary
        properties[col_name] = _property(col_name, column["type"], nullable, samples[col_name])
        if not nullable:
            required.append(col_name)
    key = f"; primary key: {', '.join(primary)}" if primary else ""
    schema: dict[str, Any] = {
        "$schema": SCHEMA_DRAFT,
        "title": name or table,
        "description": f"Drafted by govex contract infer from table {table}{key}. Review the "
        "x-govex-pii and x-govex-checks suggestions before publishing.",
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": properties,
    }
    return contracts.check_contract_schema(schema, file=f"{table} (inferred)")


def _sample(
    conn: sa.Connection, table: str, names: Sequence[str], limit: int
) -> dict[str, list[Any]]:
    """Up to `limit` rows, column by column; bounded so a huge table costs one small read."""
    relation = sa.table(table, *(sa.column(n) for n in names))
    rows = conn.execute(sa.select(*relation.c).limit(limit)).all()
    return {n: [row[i] for row in rows] for i, n in enumerate(names)}


def _json_type(sql_type: Any) -> tuple[str, dict[str, Any]]:
    """(JSON type, extra keywords) of a reflected column type."""
    if isinstance(sql_type, sa.Boolean):
        return "boolean", {}
    if isinstance(sql_type, sa.Integer):
        return "integer", {}
    if isinstance(sql_type, sa.Numeric):
        return "number", {}
    if isinstance(sql_type, sa.DateTime):
        return "string", {"format": "date-time"}
    if isinstance(sql_type, sa.Date):
        return "string", {"format": "date"}
    extra: dict[str, Any] = {}
    if isinstance(sql_type, sa.Enum) and sql_type.enums:
        extra["enum"] = list(sql_type.enums)
    elif isinstance(sql_type, sa.String) and sql_type.length:
        extra["maxLength"] = int(sql_type.length)
    return "string", extra


def _property(name: str, sql_type: Any, nullable: bool, values: list[Any]) -> dict[str, Any]:
    json_type, extra = _json_type(sql_type)
    prop: dict[str, Any] = {"type": [json_type, "null"] if nullable else json_type, **extra}
    if json_type == "string" and "format" not in extra:
        pii, checks = suggest(name, [v for v in values if v is not None])
        if pii:
            prop["x-govex-pii"] = pii
        if checks:
            prop["x-govex-checks"] = checks
    return prop


def suggest(column: str, values: Sequence[Any]) -> tuple[str | None, list[str]]:
    """(PII category, national checks) suggested by a column's name and sampled values.

    A check is suggested only when every sampled value passes it (a column of valid resident
    IDs is one, whatever it is called); a name alone suggests the PII category only.
    """
    lowered = column.lower()
    texts = [str(v) for v in values]

    def all_pass(check: Any) -> bool:
        return bool(texts) and all(check(t) for t in texts)

    if all_pass(is_valid_resident_id):
        return "id_number", ["cn_resident_id"]
    if all_pass(is_valid_uscc):
        return None, ["cn_uscc"]
    if all_pass(is_valid_cn_mobile_phone):
        return "phone", ["cn_mobile_phone"]
    if _ID_NAMES.search(lowered):
        return "id_number", []
    if _USCC_NAMES.search(lowered):
        return None, []
    if _PHONE_NAMES.search(lowered):
        return "phone", []
    if _EMAIL_NAMES.search(lowered):
        return "email", []
    if _PERSON_NAMES.match(lowered):
        return "name", []
    if _ADDRESS_NAMES.search(lowered):
        return "address", []
    return None, []
