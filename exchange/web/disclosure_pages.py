"""The disclosure page (使用情况公开): who received or verified one record, and which departments
received the records of one ID number, for providers (their own resources), admin, the
authority and auditors.

Both questions are forms that post, so the key and the ID number stay out of URLs, access
logs and browser history; each answer comes from `exchange.web.disclosure`, the same calls as
`/api/v1/disclosure`, which authorise them. A number that is not a resident ID re-renders the
form with the sentence saying why (422).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

import catalog
from exchange.store import Principal
from exchange.web import disclosure, pages, policy
from exchange.web.auth import PageError, PagePrincipal
from exchange.web.service import Denied, Limited, Missing
from govex.errors import DeclarationError

router = APIRouter(include_in_schema=False)

# The navigation shows the page's link only to those who may use it (templates/base.html).
pages.templates.env.globals.update(may_disclose=policy.may_read_disclosure)


def _resources(request: Request, principal: Principal) -> list[dict[str, Any]]:
    """The resources the principal may ask about, for the form's choice."""
    with request.app.state.store.connect() as conn:
        return [r for r in catalog.list_resources(conn)
                if policy.may_read_disclosure(principal, str(r["provider"]))]


def _page(request: Request, principal: Principal, status_code: int = 200,
          **context: Any) -> HTMLResponse:
    if not policy.may_read_disclosure(principal):
        raise _error(disclosure.refused(principal, "who received a record"))
    context.setdefault("record", None)
    context.setdefault("search", None)
    context.setdefault("message", None)
    return pages.render(request, "disclosure.html", principal, status_code=status_code,
                        resources=_resources(request, principal), **context)


def _error(error: Exception) -> PageError:
    if isinstance(error, Limited):
        return PageError(429, str(error), {"Retry-After": str(error.retry_after)})
    return PageError(403 if isinstance(error, Denied) else 404, str(error))


@router.get("/disclosure", response_class=HTMLResponse)
def disclosure_form(request: Request, principal: PagePrincipal) -> HTMLResponse:
    return _page(request, principal)


@router.post("/disclosure", response_class=HTMLResponse)
def record_disclosure(
    request: Request,
    principal: PagePrincipal,
    resource: Annotated[str, Form()],
    key: Annotated[str, Form()],
) -> HTMLResponse:
    """Who received or verified one record, the key sent in the form body."""
    try:
        found = disclosure.disclosure_for(request.app.state.store, principal, resource,
                                          key.strip())
    except (Denied, Missing, Limited) as error:
        raise _error(error) from error
    return _page(request, principal, record=found, chosen=resource)


@router.post("/disclosure/id-number", response_class=HTMLResponse)
def id_number_disclosure(
    request: Request,
    principal: PagePrincipal,
    id_number: Annotated[str, Form()],
) -> HTMLResponse:
    """Which departments received or verified the records of one ID number."""
    try:
        found = disclosure.id_number_for(request.app.state.store, principal, id_number)
    except DeclarationError as error:
        return _page(request, principal, status_code=422, message=error.message)
    except (Denied, Limited) as error:
        raise _error(error) from error
    return _page(request, principal, search=found)
