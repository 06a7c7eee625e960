"""`POST /api/v1/verify/{code}`: does what the consumer holds match the source? (可用不可见)

The route reads its body itself (`exchange.verify.service` checks it, naming the record and
field at fault), so that the subscription is authorised before the body is judged and the
body's bytes are what the usage counts. It is asked 100 times a second: the token check and
the verification run in one worker thread, not one each (FastAPI would run a blocking
dependency and a blocking route in two).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field

from exchange.verify import service
from exchange.web.api import ERRORS, Problem
from exchange.web.auth import api_principal, bearer
from exchange.web.limits import VERIFY_BODY_MAX
from govex.errors import DeclarationError, Forbidden, one_line

router = APIRouter(prefix="/api/v1", responses=ERRORS)


class VerifyResult(BaseModel):
    """One asked record's answer, in the order asked. Never a source value."""

    model_config = ConfigDict(extra="forbid")

    key: dict[str, Any] = Field(description="the key as the consumer sent it")
    found: bool | None = Field(
        default=None, description="whether the source holds a record with this key (absent "
        "when `limited`)")
    match: dict[str, bool] | None = Field(
        default=None, description="per asked field, whether the value sent equals the "
        "source's as the contract types it (absent when not found or `limited`)")
    limited: bool | None = Field(
        default=None, description="true: this key had its GOVEX_VERIFY_KEY_DAILY answers "
        "today (Asia/Shanghai); no answer, nothing recorded")


class VerifyOut(BaseModel):
    subscription: str = Field(description="the verify subscription the call was answered under")
    as_of: str | None = Field(description="when a run last brought the subscription's "
                              "verification index level with the source (null: never)")
    results: list[VerifyResult]


_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["records"],
    "properties": {
        "subscription": {
            "type": "string", "description": "which verify subscription, when the "
            "department holds several to this resource"},
        "records": {
            "type": "array", "minItems": 1, "maxItems": service.MAX_RECORDS,
            "items": {
                "type": "object", "additionalProperties": False, "required": ["key"],
                "properties": {
                    "key": {"type": "object", "description": "every key field of the "
                            "resource, and only those: {field: value}"},
                    "fields": {"type": "object", "description": "fields of the subscription "
                               "and the values held: {field: value}, typed as the contract "
                               "types them (dates YYYY-MM-DD; numbers as numbers or text)"},
                },
            },
        },
    },
}

_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "not a consumer token, or the department holds no "
          "active verify subscription to the resource (or not the one named)"},
    404: {"model": Problem, "description": "unknown resource code"},
    413: {"model": Problem, "description": f"the body is over {VERIFY_BODY_MAX // 1024} KiB"},
    422: {"model": Problem, "description": "a body that is not what the route takes: not "
          "JSON, 0 or more than 1000 records, a key that is not the resource's, a field the "
          "subscription may not ask about, a value not of its field's type; the detail names "
          "it, e.g. records[3].fields.birth_date"},
    429: {"model": Problem, "description": "over the subscription's GOVEX_VERIFY_RATE calls "
          "per second, or past its GOVEX_VERIFY_NOT_FOUND_DAILY records answered not found "
          "today (refused until midnight Asia/Shanghai); the Retry-After header says when to "
          "retry",
          "headers": {"Retry-After": {"description": "seconds to wait",
                                      "schema": {"type": "integer"}}}},
}


@router.post(
    "/verify/{code}", response_model=VerifyOut, response_model_exclude_none=True,
    tags=["verification"], responses=_ERRORS,
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": _BODY_SCHEMA}}}},
)
async def verify(
    request: Request, code: str,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Response:
    """Whether values the consumer holds match the source, per field, for 1–1000 records:
    `{"records": [{"key": {…}, "fields": {"name": "张三", "birth_date": "1990-01-01"}}]}` →
    `{"results": [{"key": {…}, "found": true, "match": {"name": true, "birth_date": false}}]}`.
    Needs a consumer token of a department with an active `delivery: verify` subscription to
    the resource; only its fields may be asked about. Never returns a source value."""
    body = await request.body()
    answer = await run_in_threadpool(_answer, request, credentials, code, body)
    return Response(answer, media_type="application/json")


def _answer(
    request: Request, credentials: HTTPAuthorizationCredentials | None, code: str, body: bytes
) -> bytes:
    """The token's principal (401 as every route), then the call's answer as JSON."""
    principal = api_principal(request, credentials)
    try:
        answer = service.verify(request.app.state.store, principal, code, body)
    except service.TooManyCalls as error:
        raise HTTPException(status_code=429, detail=one_line(str(error)),
                            headers={"Retry-After": str(error.retry_after)}) from error
    except Forbidden as error:
        raise HTTPException(status_code=403, detail=one_line(str(error))) from error
    except service.UnknownResource as error:
        raise HTTPException(status_code=404, detail=error.message) from error
    except DeclarationError as error:
        raise HTTPException(status_code=422, detail=one_line(error.message)) from error
    # Written directly, not validated again through VerifyOut (which documents it): a
    # 1000-record answer would spend milliseconds on a check of what was just built.
    return orjson.dumps(answer)
