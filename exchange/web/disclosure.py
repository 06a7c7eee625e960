"""Disclosure for the REST API and the pages, authorised once (`policy.may_read_disclosure`):
who received or verified one record, and the records of one ID number across resources.

- `disclosure_for`: `records.disclosure` for the resource's provider, admin, authority and
  auditor; 403 for anyone else (a consumer too, whatever it received: the answer names the
  other departments). An unknown resource, or a key that does not have the resource key's
  shape, is 404 as for trace; a well-formed key nobody received is an empty list, not 404:
  those who may ask own or supervise the record, so there is nothing to hide about whether it
  exists.
- `id_number_for`: the records holding one ID number (every resource whose contract marks a
  field `x-govex-pii: id_number`, of the provider's own resources for a provider) and their
  disclosures (`records.search_pii`). The number is normalised (white space trimmed, a final
  x upper-cased) and must be a resident ID: 17 digits and the GB 11643 check character.

Each answer counts as one lookup against the token's GOVEX_LOOKUP_RATE, shared with trace and
dispute openings (429 with Retry-After beyond).
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

import catalog
import records
from exchange.store import Principal
from exchange.verify import service as verify
from exchange.web import policy
from exchange.web.disputes import count_lookup
from exchange.web.service import Denied, Missing
from govex.errors import DeclarationError
from quality.standards import resident_id_check_digit

__all__ = ["ID_NUMBER_PII", "disclosure_for", "id_number_for", "normalise_id_number", "refused"]

ID_NUMBER_PII = "id_number"  # the `x-govex-pii` category searched by ID number
_ID_SHAPE = re.compile(r"[0-9]{17}[0-9X]")


def refused(principal: Principal, what: str) -> Denied:
    """403 for a token that may not ask (`policy.may_read_disclosure`)."""
    return Denied(
        f"role '{principal.role}' of department '{principal.department}' may not read {what}; "
        "only its provider, admin, authority and auditor tokens may (disclosure names every "
        "department that received a record)"
    )


def disclosure_for(store: sa.Engine, principal: Principal, code: str, key: str
                   ) -> dict[str, Any]:
    """`govex disclosure --json` for record `key` of `code` (Denied, Missing, Limited)."""
    count_lookup(store, principal)  # every request counts, refused ones too (as trace)
    if not policy.may_read_disclosure(principal):
        raise refused(principal, "who received a record")
    with store.connect() as conn:
        try:
            resource = catalog.load_resource(conn, code)
        except DeclarationError as error:
            raise Missing(str(error)) from error
    if not policy.may_read_disclosure(principal, resource.provider):
        raise refused(principal, f"who received the records of {code}")
    try:
        with store.connect() as conn:
            return records.disclosure(conn, code, key,
                                      verified_as=verify.recorded_key(conn, code, key))
    except DeclarationError as error:  # a key of the wrong shape
        raise Missing(error.message) from error


def normalise_id_number(text: str) -> str:
    """A resident ID number as govex searches it: trimmed, its check character X upper-case;
    DeclarationError unless it is 17 digits and the right GB 11643 check character."""
    value = text.strip().upper()
    if not _ID_SHAPE.fullmatch(value):
        msg = (f"'{text.strip()[:40]}' is not a resident ID number: 18 characters, 17 digits "
               "and a check character (a digit or X)")
        raise DeclarationError(msg, field="id_number")
    expected = resident_id_check_digit(value[:17])
    if value[17] != expected:
        msg = (f"ID number {value} has check character {value[17]}, but its first 17 digits "
               f"give {expected}: check it for a mistyped digit")
        raise DeclarationError(msg, field="id_number")
    return value


def id_number_for(store: sa.Engine, principal: Principal, id_number: str) -> dict[str, Any]:
    """The records holding ID number `id_number` and who received or verified each, per
    resource the principal may ask about: {id_number, resources: [...]}, each item as
    `records.search_pii` gives it. DeclarationError for a number that is not a resident ID;
    Denied, Limited."""
    count_lookup(store, principal)
    if not policy.may_read_disclosure(principal):
        raise refused(principal, "who received the records of an ID number")
    value = normalise_id_number(id_number)
    # Sources may keep the check character in lower case: both spellings are searched.
    spellings = [value, value[:17] + "x"] if value.endswith("X") else [value]
    with store.connect() as conn:
        allowed = [code for code, declaration in catalog.resource_declarations(conn).items()
                   if policy.may_read_disclosure(principal, str(declaration["provider"]))]
        found = records.search_pii(conn, ID_NUMBER_PII, spellings, resources=allowed)
    return {"id_number": value, "resources": found}
