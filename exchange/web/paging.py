"""One page of a long list, the same on the pages and in the API.

`?page=` counts from 1 and `?per_page=` is at most MAX_PER_PAGE (default DEFAULT_PER_PAGE): a
list of thousands of resources is read from the store a page at a time (LIMIT/OFFSET), so what
a request costs does not grow with the catalog. The API keeps its answers bare JSON lists, as
before paging, and says the rest in headers: `X-Total-Count` (the whole list's length) and an
RFC 8288 `Link` header (`first`, `prev`, `next`, `last`). The pages show the same as links.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import urlencode

from starlette.datastructures import URL

T = TypeVar("T")

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 500
# The API's lists default to the largest page: a client written before paging still gets a
# whole city's catalog in one answer; a province's is paged (`X-Total-Count`, `Link`).
API_PER_PAGE = MAX_PER_PAGE


@dataclass(frozen=True)
class PageRequest:
    """Which page of a list was asked for."""

    number: int = 1
    per_page: int = DEFAULT_PER_PAGE

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.per_page


@dataclass(frozen=True)
class Page(Generic[T]):
    """The items of one page and where it stands in the whole list."""

    items: list[T]
    number: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        """How many pages the list has (at least one, an empty one)."""
        return max(1, -(-self.total // self.per_page))

    @property
    def first_item(self) -> int:
        """Position (from 1) of the page's first item; 0 for an empty page."""
        return (self.number - 1) * self.per_page + 1 if self.items else 0

    @property
    def last_item(self) -> int:
        return (self.number - 1) * self.per_page + len(self.items)


def paged(items: list[T], asked: PageRequest, total: int) -> Page[T]:
    return Page(items, asked.number, asked.per_page, total)


def parse(page: str | None, per_page: str | None) -> PageRequest:
    """`?page=` and `?per_page=` of a page's URL; ValueError with one sentence when either is
    not a whole number in range (the API's parameters are checked by FastAPI instead)."""
    number = _whole(page, "page", 1, None) if page not in (None, "") else 1
    size = (_whole(per_page, "per_page", 1, MAX_PER_PAGE) if per_page not in (None, "")
            else DEFAULT_PER_PAGE)
    return PageRequest(number, size)


def _whole(text: str | None, name: str, low: int, high: int | None) -> int:
    value = str(text)
    if not value.isdigit() or int(value) < low or (high is not None and int(value) > high):
        bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
        msg = f"{name} must be a whole number {bound}, got {value!r}"
        raise ValueError(msg)
    return int(value)


def _neighbours(page: Page[T]) -> dict[str, int]:
    """The pages a page links to, by their RFC 8288 relation."""
    links = {"first": 1}
    if page.number > 1:
        links["prev"] = min(page.number - 1, page.pages)
    if page.number < page.pages:
        links["next"] = page.number + 1
    links["last"] = page.pages
    return links


def headers(url: URL, page: Page[T], size_parameter: str = "per_page") -> dict[str, str]:
    """`X-Total-Count` and `Link` for an API answer holding `page` of the list at `url` (whose
    page size is its `size_parameter`: `per_page`, or `limit` for the runs)."""
    links = ", ".join(
        f'<{url.include_query_params(page=number, **{size_parameter: page.per_page})}>; '
        f'rel="{rel}"'
        for rel, number in _neighbours(page).items()
    )
    return {"X-Total-Count": str(page.total), "Link": links}


def links(query: Mapping[str, str], page: Page[T]) -> list[dict[str, str | int]]:
    """The page links of an HTML list: relation, page number and a relative href that keeps
    the list's other query parameters (`department`, `days`, …)."""
    kept = {k: v for k, v in query.items() if k not in ("page", "per_page")}
    if page.per_page != DEFAULT_PER_PAGE:
        kept["per_page"] = str(page.per_page)
    return [
        {"rel": rel, "number": number, "href": "?" + urlencode({**kept, "page": str(number)})}
        for rel, number in _neighbours(page).items()
    ]
