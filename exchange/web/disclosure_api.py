"""`GET /api/v1/disclosure/{code}/{key}` and `POST /api/v1/disclosure`: every department that
received or verified one record (INTERFACES.md, "Usable, not visible"). Who may ask and what
the answers mean: `exchange.web.disclosure`."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from exchange.web.api import _TOO_LARGE, ERRORS, Problem, StoredText
from exchange.web.auth import ApiPrincipal
from exchange.web.service import Denied, Limited, Missing
from govex.errors import one_line

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["disclosure"])


class DisclosureItem(BaseModel):
    """One delivery, delete or verification of the record."""

    model_config = ConfigDict(extra="allow")

    action: Literal["delivered", "deleted", "verified"] = Field(
        description="delivered: a copy reached the consumer's target; deleted: a delete "
        "reached it (the key alone, no field value); verified: the consumer asked whether "
        "values it holds match")
    at: str | None = Field(description="when (ISO 8601, UTC)")
    consumer: str | None = Field(
        description="the receiving department; null only for a subscription removed from the "
        "catalog of which nothing is left")
    subscription: str
    delivery: Literal["bulk", "verify"] = Field(
        description="bulk: a copy in the consumer's target; verify: questions only")
    fields: list[str] | None = Field(
        description="fields sent (a verification: the fields asked; a delete: none); null "
        "where a removed subscription's declaration is lost")
    masking: dict[str, str] | None = Field(description="field -> masking function, as declared")
    purpose: str | None
    subscription_state: Literal["active", "revoked", "removed"] = Field(
        description="the subscription in the catalog now: removed when no longer declared")
    declared_in: Literal["catalog", "lineage"] | None = Field(
        description="where consumer, fields, masking and purpose come from: the catalog now, "
        "the lineage event of the removed subscription's last delivery, or nowhere (null)")
    run_id: str | None = Field(description="the run that delivered or deleted it")
    call_id: str | None = Field(description="the verification call")
    found: bool | None = Field(description="verification: the record existed at the source")
    matched: bool | None = Field(description="verification: every field asked matched")
    beyond_retention: bool = Field(
        description="a delivery from a month provenance retention dropped, kept because it "
        "was the subscription's last delivery of the record then (earlier ones are gone)")


class DisclosureOut(BaseModel):
    """The object `govex disclosure --json` prints."""

    model_config = ConfigDict(extra="allow")

    resource: str
    key: str
    provider: str
    departments: list[str] = Field(description="every department named below, sorted")
    disclosures: list[DisclosureItem] = Field(description="newest first; empty when nobody "
                                              "received or verified the record")


class DisclosureIn(BaseModel):
    """Which record. In a body rather than the URL, so the key (often a citizen ID number)
    reaches no access log, proxy log or browser history."""

    model_config = ConfigDict(extra="forbid")

    resource: StoredText = Field(description="resource code, e.g. PSB-RES-001")
    key: StoredText = Field(min_length=1,
                            description="record key values joined by ',' (the source key)")


_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "not the resource's provider, an admin, the "
          "authority or an auditor (a consumer never: the answer names other departments)"},
    404: {"model": Problem, "description": "unknown resource code, or a key without the "
          "resource key's number of values; a well-formed key nobody received is an empty "
          "list instead"},
    429: {"model": Problem, "description": "over GOVEX_LOOKUP_RATE lookups (traces, dispute "
          "openings, disclosures) by this token in the current minute; the Retry-After header "
          "says when to retry",
          "headers": {"Retry-After": {"description": "seconds until the next minute",
                                      "schema": {"type": "integer"}}}},
}


def _disclosure(request: Request, principal: ApiPrincipal, code: str, key: str
                ) -> dict[str, Any]:
    from exchange.web import disclosure

    try:
        return disclosure.disclosure_for(request.app.state.store, principal, code, key)
    except Limited as error:
        raise HTTPException(status_code=429, detail=one_line(str(error)),
                            headers={"Retry-After": str(error.retry_after)}) from error
    except Denied as error:
        raise HTTPException(status_code=403, detail=one_line(str(error))) from error
    except Missing as error:
        raise HTTPException(status_code=404, detail=one_line(str(error))) from error


@router.post("/disclosure", response_model=DisclosureOut,
             responses={**_TOO_LARGE, **_RESPONSES})
def disclosure_by_body(request: Request, principal: ApiPrincipal, body: DisclosureIn
                       ) -> dict[str, Any]:
    """Who received or verified one record, named in the body: the same answer as
    `GET /api/v1/disclosure/{code}/{key}`, with the key kept out of URLs and access logs.
    Prefer this form."""
    return _disclosure(request, principal, body.resource, body.key)


@router.get("/disclosure/{code}/{key:path}", response_model=DisclosureOut,
            responses=_RESPONSES)
def disclosure(request: Request, principal: ApiPrincipal, code: str, key: str
               ) -> dict[str, Any]:
    """Every department that received (delivered, deleted) or verified record `key` of
    `code`, newest first: when, under which subscription and purpose, which fields and how
    masked. For the resource's provider, admin, authority and auditor. Counted against
    GOVEX_LOOKUP_RATE. The key travels in the URL: prefer `POST /api/v1/disclosure`."""
    return _disclosure(request, principal, code, key)
