"""The reads behind both the REST API and the pages, with the authorisation decided once.

Each function takes the principal and raises `Denied` (403) or `Missing` (404); the API turns
those into JSON errors, the pages into HTML ones. So a page can never show what the API would
refuse, and the other way round.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import catalog
import quality
from exchange.store import Principal
from exchange.web import policy, queries
from exchange.web.paging import Page, PageRequest, paged
from govex.errors import DeclarationError

log = logging.getLogger(__name__)


class Denied(Exception):  # noqa: N818 - named for the HTTP answer it becomes
    """403: the role may not read this."""


class Missing(Exception):  # noqa: N818
    """404: no such resource, run or file."""


class Limited(Exception):  # noqa: N818
    """429: over the token's lookup rate (GOVEX_LOOKUP_RATE); retry after `retry_after` s."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


FIRST_PAGE = PageRequest()


@dataclass(frozen=True)
class Dashboard:
    """The quality dashboard: every department's totals, and one page of resource reports."""

    departments: list[dict[str, Any]]  # totals; "resources": its reports on this page
    page: Page[dict[str, Any]]


@dataclass(frozen=True)
class Context:
    """What the web app reads: the store, and the Data Docs it serves from `data_docs_dir`
    (a local folder), which runs leave at `data_docs_location` (that folder by default, or
    object storage: then the folder is this server's cache of the pages it renders)."""

    store: sa.Engine
    data_docs_dir: Path
    data_docs_location: str | None = None

    @property
    def docs_location(self) -> str:
        return self.data_docs_location or str(self.data_docs_dir)

    def with_quality(self, conn: sa.Connection) -> bool:
        return queries.has_quality_tables(conn)

    # ---- catalog ------------------------------------------------------------------------

    def resources(self, principal: Principal) -> list[dict[str, Any]]:
        del principal  # the catalog is open to every role
        with self.store.connect() as conn:
            return catalog.list_resources(conn)

    def resource_page(
        self, principal: Principal, department: str | None = None,
        page: PageRequest = FIRST_PAGE,
    ) -> Page[dict[str, Any]]:
        """One page of the catalog (of one providing department when given), by code."""
        del principal  # the catalog is open to every role
        with self.store.connect() as conn:
            self._require_department(conn, department)
            items = catalog.list_resources(conn, provider=department, limit=page.per_page,
                                           offset=page.offset)
            return paged(items, page, catalog.count_resources(conn, provider=department))

    def _require_department(self, conn: sa.Connection, department: str | None) -> None:
        """A department filter names a department of the catalog (else 404)."""
        if department is not None and not queries.has_department(conn, department):
            msg = f"unknown department '{department}' (not in the catalog's departments)"
            raise Missing(msg)

    def resource(self, principal: Principal, code: str) -> dict[str, Any]:
        """`govex catalog show --json`, with only the subscriptions the principal may read."""
        with self.store.connect() as conn:
            try:
                shown = catalog.show_resource(conn, code)
            except DeclarationError as error:
                raise Missing(str(error)) from error
        provider = str(shown["provider"])
        shown["subscriptions"] = [
            s for s in shown["subscriptions"]
            if policy.may_read_subscription(principal, s, provider)
        ]
        return shown

    def subscriptions(
        self, principal: Principal, resource: str | None = None
    ) -> list[dict[str, Any]]:
        with self.store.connect() as conn:
            return queries.visible_subscriptions(conn, principal, resource)

    def subscription_page(
        self, principal: Principal, resource: str | None = None,
        department: str | None = None, page: PageRequest = FIRST_PAGE,
    ) -> Page[dict[str, Any]]:
        """One page of the checklist lines the principal may read: of one resource, or those
        a department takes part in (consumer or provider), when given."""
        with self.store.connect() as conn:
            self._require_department(conn, department)
            lines, total = queries.subscription_lines(
                conn, principal, resource=resource, department=department, page=page)
        return paged(lines, page, total)

    def department_names(self) -> dict[str, str]:
        with self.store.connect() as conn:
            return queries.department_names(conn)

    # ---- runs ---------------------------------------------------------------------------

    def _require_operations(self, principal: Principal) -> None:
        if not policy.may_read_operations(principal):
            msg = (
                f"role '{principal.role}' may not read runs, quality results or quarantined "
                "records"
            )
            raise Denied(msg)

    def _require_resource(
        self, conn: sa.Connection, principal: Principal, code: str
    ) -> dict[str, Any]:
        """The resource's declaration, once the principal may read its operations."""
        self._require_operations(principal)
        declaration = catalog.resource_declarations(conn, codes=[code]).get(code)
        if declaration is None:
            msg = f"unknown resource '{code}' (not in the catalog)"
            raise Missing(msg)
        provider = str(declaration["provider"])
        if not policy.may_read_resource_operations(principal, provider):
            msg = (
                f"resource {code} is provided by '{provider}'; department "
                f"'{principal.department}' may not read its runs, quality or quarantine"
            )
            raise Denied(msg)
        return declaration

    def visible_resources(self, conn: sa.Connection, principal: Principal) -> list[str]:
        """Codes of the resources whose operations the principal may read."""
        return list(conn.execute(queries.visible_codes(principal)).scalars())

    def runs(
        self, principal: Principal, resource: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        return self.run_page(principal, resource, page=PageRequest(1, limit)).items

    def run_page(
        self, principal: Principal, resource: str | None = None,
        department: str | None = None, page: PageRequest = FIRST_PAGE,
    ) -> Page[dict[str, Any]]:
        """Run summaries, newest first, a page at a time: of one resource, or of a providing
        department's resources, when given; of those the principal may read."""
        self._require_operations(principal)
        with self.store.connect() as conn:
            scope: queries.Codes | None
            if resource is not None:
                self._require_resource(conn, principal, resource)
                scope = [resource]
            else:
                self._require_department(conn, department)
                everything = policy.reads_everything(principal) and department is None
                scope = None if everything else queries.visible_codes(principal, department)
            items = queries.list_runs(conn, scope, page.per_page, page.offset)
            return paged(items, page, queries.count_runs(conn, scope))

    def run(self, principal: Principal, run_id: str) -> dict[str, Any]:
        self._require_operations(principal)
        with self.store.connect() as conn:
            found = queries.run_row(conn, run_id)
            if found is None:
                msg = f"unknown run '{run_id}'"
                raise Missing(msg)
            self._require_resource(conn, principal, found["resource"])
        return found

    # ---- quality ------------------------------------------------------------------------

    def quality(
        self, principal: Principal, code: str, days: int = queries.TOP_WINDOW_DAYS
    ) -> dict[str, Any]:
        with self.store.connect() as conn:
            declaration = self._require_resource(conn, principal, code)
            report = queries.quality_report(
                conn, code, declaration, now=_now(), with_quality=self.with_quality(conn),
                days=days,
            )
        for point in report["runs"]:
            point["data_docs"] = self.data_docs_link(point["run_id"])
        return report

    def dashboard(
        self, principal: Principal, department: str | None = None,
        days: int = queries.TOP_WINDOW_DAYS, page: PageRequest = FIRST_PAGE,
    ) -> Dashboard:
        """Every providing department the principal may read (one when `department` is
        given) with its totals, its pass rate by the same definition as a resource's
        (`queries.pass_rate`); and one page of their resources' quality reports (top failing
        checks over the last `days` days), by department then code. A fixed number of
        queries whatever the size of the catalog."""
        self._require_operations(principal)
        now = _now()
        with self.store.connect() as conn:
            self._require_department(conn, department)
            with_quality = self.with_quality(conn)
            names = queries.department_names(conn)
            scope = queries.visible_codes(principal, department)
            totals = queries.department_totals(conn, scope, now=now, with_quality=with_quality)
            codes, total = queries.page_of_codes(conn, scope, page)
            declarations = catalog.resource_declarations(conn, codes=codes)
            reports = queries.quality_reports(
                conn, {code: declarations[code] for code in codes}, now=now,
                with_quality=with_quality, days=days, with_checks=False)
        shown = [reports[code] for code in codes]
        for report in shown:
            last = report["runs"][-1] if report["runs"] else None
            report["last_run"] = last
            report["data_docs"] = self.data_docs_link(last["run_id"]) if last else None
        departments = [
            {**row, "name": names.get(code, code),
             "resources": [r for r in shown if r["provider"] == code]}
            for code, row in totals.items()
        ]
        return Dashboard(departments, paged(shown, page, total))

    def quarantine(
        self, principal: Principal, resource: str | None = None
    ) -> list[dict[str, Any]]:
        """Quarantined records: a provider sees its own resources' only, nobody else's."""
        self._require_operations(principal)
        with self.store.connect() as conn:
            wanted: queries.Codes
            if resource is not None:
                self._require_resource(conn, principal, resource)
                wanted = [resource]
            else:
                wanted = queries.visible_codes(principal)
            return queries.quarantined_records(
                conn, wanted, with_quality=self.with_quality(conn)
            )

    # ---- data docs ----------------------------------------------------------------------

    def data_docs_link(self, run_id: str) -> str | None:
        """Path of the run's Data Docs under /data-docs, if rendered or waiting to be (a run
        leaves them to be rendered here on first request: `quality.render_pending`)."""
        if (self.data_docs_dir / run_id / "index.html").is_file() or quality.has_data_docs(
            self.docs_location, run_id
        ):
            return f"/data-docs/{run_id}/index.html"
        return None

    def data_docs_file(self, principal: Principal, run_id: str, path: str) -> Path:
        """A file of a run's Data Docs, authorised like the run; never outside its folder.
        Data Docs a run deferred are rendered now, once."""
        self.run(principal, run_id)
        try:  # rendered from the run's report, or copied from the shared location, once
            quality.fetch_data_docs(self.docs_location, run_id, self.data_docs_dir)
        except Exception:  # noqa: BLE001 - a page that cannot render is a missing page
            log.exception("could not render the Data Docs of run %s", run_id)
        root = (self.data_docs_dir / run_id).resolve()
        target = (root / (path or "index.html")).resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.is_relative_to(root) or not target.is_file():
            msg = f"no Data Docs file '{path}' for run {run_id}"
            raise Missing(msg)
        return target
