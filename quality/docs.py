"""Great Expectations Data Docs for one run: GE's own validation page, made safe to serve
under govex's signed-in origin, as one self-contained `index.html`.

An ephemeral GE context gets a local filesystem Data Docs site rooted at the run's directory;
the run's merged validation result is put in the context's (in-memory) validation results
store under the run id, and `context.build_data_docs` renders the site: a validation page
naming every check, its counts and a sample of failing values.

Source data is hostile and GE writes the values it renders into its HTML unescaped, so:

1. Before rendering, every failing value is masked (`mask_value`) and escaped, and so is an
   observed value that is not a number; the declarations GE writes raw (the column name) are
   escaped too (`_expectation`). GE then writes text, never markup, from the data.
2. After rendering, the validation page is rewritten by an allowlist (`harden_page`): no
   `<script>`, no event handler attributes, no forms, no `<link>`/`<img>`/CSS `url()` loads
   (GE's templates pull Bootstrap, jQuery, Vega and Font Awesome from public CDNs, and its
   logo from S3), no links but to its own sections. A small stylesheet of our own is inlined
   so the page reads well without Bootstrap, and govex's summary of the run's checks heads it.
3. That page is the run's `index.html`; the rest of GE's site goes: its index is a table
   drawn by JavaScript (bootstrap-table), empty without it, and its `static/` fonts, images
   and stylesheets are referenced by nothing any more.

The web app adds the last layer: a sandboxing Content-Security-Policy on every `/data-docs`
response (`exchange.web.app.DATA_DOCS_CSP`), which also protects Data Docs written before
this module escaped anything. A sandboxed page has an opaque origin, so its own requests and
the navigations it starts reach govex without the SameSite=Strict session: this is why the
page is one file, with nothing to load and no other page to link to.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import shutil
import string
import threading
from collections.abc import Mapping
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from govex import storage
from govex.settings import load_settings
from quality.gate import GateResult
from quality.report import CheckResult, QualityReport, _plain

__all__ = [
    "MASK_NOTE", "build_data_docs", "data_docs_dir", "defer_data_docs", "fetch_data_docs",
    "harden_page", "has_data_docs", "has_pending", "mask_value", "render_pending",
]

_SITE = "govex"
#: What GE's site builder writes besides index.html; replaced by the one page.
_GE_FOLDERS = ("validations", "expectations", "static")

#: Longest masked value shown, in characters; longer ones end in "… (N chars)".
MASK_WIDTH = 64
#: What every page says about the values it shows.
MASK_NOTE = (
    "Failing values are masked by shape: digits show as 9, Latin letters as a or A, other "
    "characters as *; ASCII punctuation and spaces are kept. The records themselves are in the "
    "quarantine. 样本值已按字符类型遮蔽。"
)
_KEPT = frozenset(string.punctuation + " ")
#: Expectation arguments that name columns (GE writes these into its HTML unescaped).
_COLUMN_KWARGS = frozenset({"column", "column_A", "column_B", "column_list"})


# ---- values ------------------------------------------------------------------------------


def mask_value(value: Any) -> str | None:
    """The shape of a failing source value: ASCII digits become `9`, Latin letters `a`/`A`,
    ASCII punctuation and the space stay, any other character (CJK, full-width digits,
    control characters) becomes `*`; longer than MASK_WIDTH, it is cut and its length named.
    None stays None (GE shows null).

    Why mask rather than show: the page is a static file, written once per run and served
    as it is to every role that may read the run (the provider, and the governance roles:
    admin, checklist owner, auditor); it cannot be cut to its reader, and a copy of it
    leaves govex's access checks behind. Failing values are personal data (ID numbers,
    names, phones); whoever may see one reads it in the quarantine, which the web app
    serves per principal. The shape is what a reader of Data Docs needs to see why a format
    check failed (`99999999999999999a`: a lower-case check letter) without the value.
    Masking is also the first XSS defence: `<img onerror=...>` becomes `<aaa aaaaaaa=...>`,
    which is then HTML-escaped before GE sees it."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value
    elif hasattr(value, "isoformat"):  # dates and times: their ISO text, as GE would show
        text = value.isoformat()
    else:
        text = str(value)
    if not text:
        return "(empty)"
    shape = "".join(_shape(ch) for ch in text[:MASK_WIDTH])
    if len(text) > MASK_WIDTH:
        shape += f"… ({len(text)} chars)"
    return shape


def _shape(ch: str) -> str:
    if "0" <= ch <= "9":
        return "9"
    if "a" <= ch <= "z":
        return "a"
    if "A" <= ch <= "Z":
        return "A"
    return ch if ch in _KEPT else "*"


def _escape_tree(value: Any) -> Any:
    """Every string in `value` (dict values, list items) HTML-escaped; numbers as they are."""
    if isinstance(value, str):
        return html.escape(value)
    if isinstance(value, Mapping):
        return {k: _escape_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_escape_tree(v) for v in value]
    return value


def _mask_tree(value: Any) -> Any:
    """An observed value for display: numbers and booleans (aggregates: a mean, a count) as
    they are, anything else (a column's max string, its distinct values) masked and escaped."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {html.escape(str(k)): _mask_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_mask_tree(v) for v in value]
    return html.escape(mask_value(value) or "")


def _slug(name: str) -> str:
    """A name GE both shows and uses as a path part: letters, digits and `._@+-` only."""
    return re.sub(r"[^A-Za-z0-9._@+-]", "_", name) or "_"


def _expectation(config: dict[str, Any]) -> dict[str, Any]:
    """An expectation configuration for display. GE (1.x) HTML-escapes the arguments it puts
    into a built-in expectation's sentence (a regex with `(?<!...)` shows as written), but
    writes column names raw: into the section heading, the table of contents, and the
    `type(**kwargs)` line of an expectation without a renderer (govex's national checks,
    whose arguments are columns, flags and numbers). So column names are escaped here, the
    other arguments are left to GE (escaping them too would show `&lt;` in every such regex),
    and `meta` (GE can render notes as markdown) is escaped. `harden_page` and the Data Docs
    CSP stay behind a GE that forgets."""
    kwargs = {
        key: _escape_tree(value) if key in _COLUMN_KWARGS else value
        for key, value in (config.get("kwargs") or {}).items()
    }
    return {**config, "kwargs": kwargs, "meta": _escape_tree(config.get("meta"))}


def _displayable(report: QualityReport) -> QualityReport:
    """`report` with nothing GE could write as markup: samples masked and escaped, observed
    values masked unless numeric, the names GE shows raw escaped (`_expectation`)."""

    def check(c: CheckResult) -> CheckResult:
        return replace(
            c,
            expectation=None if c.expectation is None else _expectation(c.expectation),
            sample=tuple(None if v is None else html.escape(mask_value(v) or "")
                         for v in c.sample),
            observed=_mask_tree(c.observed),
        )

    return replace(report, suite_name=_slug(report.suite_name),
                   checks=tuple(check(c) for c in report.checks))


# ---- pages -------------------------------------------------------------------------------

# Elements kept (their attributes filtered); any other tag is dropped and its text kept.
_TAGS = frozenset({
    "html", "head", "title", "meta", "style", "body", "main", "nav", "header", "footer",
    "section", "article", "aside", "div", "span", "p", "a", "ol", "ul", "li", "dl", "dt", "dd",
    "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "b", "i", "u", "s", "small", "sub",
    "sup", "code", "pre", "kbd", "samp", "q", "blockquote", "br", "hr", "table", "caption",
    "colgroup", "col", "thead", "tbody", "tfoot", "tr", "th", "td", "label", "abbr", "details",
    "summary"
})
# Dropped with everything inside them.
_DROPPED = frozenset({
    "script", "noscript", "template", "iframe", "frame", "frameset", "object", "embed",
    "applet", "svg", "math", "canvas", "audio", "video", "source", "track", "picture", "form",
    "input", "button", "select", "textarea", "option", "datalist", "dialog", "portal"
})
_VOID = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
    "source", "track", "wbr"
})
_ATTRS = frozenset({
    "class", "id", "style", "href", "alt", "title", "colspan", "rowspan", "scope", "headers",
    "role", "hidden", "lang", "dir", "charset", "name", "content", "open"
})
_URL_IN_CSS = re.compile(r"url\(\s*(?:\"[^\"]*\"|'[^']*'|[^)]*)\s*\)", re.IGNORECASE)
_IMPORT_IN_CSS = re.compile(r"@import\b[^;]*;?", re.IGNORECASE)
_MARK = "data-govex"

#: Inlined into every page: GE's markup readable without Bootstrap or Font Awesome.
STYLESHEET = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC",sans-serif;
color:#1f2328;margin:0;padding:0 1.5rem 2rem;max-width:80rem}
nav,.navbar{padding:.5rem 0;border-bottom:1px solid #d0d7de;margin-bottom:1rem}
ol.breadcrumb,ul.nav{list-style:none;padding:0;margin:.25rem 0;display:flex;flex-wrap:wrap;
gap:.75rem}
a{color:#0b5cad}
a:not([href]){color:inherit}
.m-0{margin:0}
table{border-collapse:collapse;margin:.5rem 0 1rem;max-width:100%}
th,td{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}
thead[hidden]{display:none}
.alert{background:#f6f8fa;border:1px solid #d0d7de;border-radius:4px;padding:.5rem .8rem;
margin:.75rem 0}
.badge{font-family:ui-monospace,monospace;background:#eef1f4;padding:0 .3rem;border-radius:3px}
.text-danger{color:#b42318}.text-success{color:#1a7f37}
.fa-times::before{content:"\\2717 failed"}
.fa-check-circle::before{content:"\\2713 passed"}
.fa-exclamation-triangle::before{content:"\\26A0"}
.fas,.fa{font-style:normal;font-weight:600}
footer,.d-none,.invisible,.modal,.ge-walkthrough-modal,#ge-cta-footer,.cooltip .top{display:none}
.card:has(.btn-group-toggle){display:none}
@media (min-width:768px){.d-md-block{display:block}.d-md-inline-flex{display:inline-flex}}
.card{border:1px solid #d0d7de;border-radius:4px;margin:.5rem 0;padding:.4rem .6rem}
.sticky{position:static}
.govex-summary{margin:1rem 0 1.5rem}
.govex-note{background:#fff8c5;border:1px solid #d4a72c;border-radius:4px;
padding:.4rem .7rem;margin:.75rem 0;font-size:14px}
code{font-family:ui-monospace,monospace}
"""


def _safe_href(value: str) -> str | None:
    """Links to the page's own sections (`#section-2`) only: anything else would leave the
    page without the session (see the module docstring) or for another site."""
    return value if value.startswith("#") else None


def _safe_css(text: str) -> str:
    return _IMPORT_IN_CSS.sub("", _URL_IN_CSS.sub("none", text))


class _Hardener(HTMLParser):
    """Re-serialises a page from its parse, keeping only allowlisted elements and attributes;
    every text and attribute value is escaped again on the way out."""

    def __init__(self, header: str) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._header = header
        self._skip: list[str] = []  # open elements whose content is dropped
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, closed=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, closed=True)

    def _start(self, tag: str, attrs: list[tuple[str, str | None]], *, closed: bool) -> None:
        if self._skip:
            if tag == self._skip[-1] and not closed and tag not in _VOID:
                self._skip.append(tag)
            return
        own = any(name == _MARK for name, _ in attrs)  # ours from an earlier pass: redone
        if tag in _DROPPED or own:
            if not closed and tag not in _VOID:
                self._skip.append(tag)
            return
        if tag == "img":  # every image would be a load: keep what it says
            alt = next((v for k, v in attrs if k == "alt" and v), None)
            if alt:
                self.out.append(html.escape(alt))
            return
        if tag not in _TAGS:
            return
        if tag == "meta" and not any(k in {"charset", "name"} for k, _ in attrs):
            return  # no http-equiv (refresh, a second CSP)
        kept = []
        for name, value in attrs:
            if name not in _ATTRS and not name.startswith("aria-"):
                continue
            if value is None:
                kept.append(f" {name}")
                continue
            if name == "href":
                safe = _safe_href(value)
                if safe is None:
                    continue
                value = safe
            elif name == "style":
                value = _safe_css(value)
            kept.append(f' {name}="{html.escape(value, quote=True)}"')
        self.out.append(f"<{tag}{''.join(kept)}{' /' if closed else ''}>")
        if tag == "style":
            self._in_style = not closed
        elif tag == "body" and not closed:
            self.out.append(f'<section class="govex-summary" {_MARK}>{self._header}</section>')

    def handle_endtag(self, tag: str) -> None:
        if self._skip:
            if tag == self._skip[-1]:
                self._skip.pop()
            return
        if tag == "head":  # at the end, so that `<meta charset>` stays in the first 1024 bytes
            self.out.append(f"<style {_MARK}>{STYLESHEET}</style>")
        if tag in _TAGS and tag not in _VOID:
            self.out.append(f"</{tag}>")
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._in_style:
            # Raw text: no entity, no `</style` can be in it (the parser ended it there).
            self.out.append(_safe_css(data))
        else:
            self.out.append(html.escape(data, quote=False))

    def handle_decl(self, decl: str) -> None:
        if decl.lower().startswith("doctype"):
            self.out.append("<!DOCTYPE html>")

    # Comments, processing instructions and CDATA sections are dropped.
    def handle_comment(self, data: str) -> None:
        del data

    def handle_pi(self, data: str) -> None:
        del data

    def unknown_decl(self, data: str) -> None:
        del data


def harden_page(text: str, header: str = "") -> str:
    """An HTML page re-written by an allowlist: no scripts, event handlers, forms, frames,
    images, stylesheet links or CSS `url()`, no links but to its own `#sections`; govex's
    stylesheet added, and `header` (trusted markup) first in the body, with the masking note.
    Running it again on its own output gives the same page."""
    note = f'<p class="govex-note">{html.escape(MASK_NOTE)}</p>'
    parser = _Hardener(header + note)
    parser.feed(text)
    parser.close()
    return "".join(parser.out)


def _summary(report: QualityReport, run_name: str) -> str:
    """govex's head of the page: the run and its failed checks with their counts (names
    escaped: contracts come from other departments too). Every check, passed or not, follows
    in GE's own tables."""
    rows = [
        f"<tr><td><code>{html.escape(c.check)}</code></td>"
        f"<td><code>{html.escape(c.column)}</code></td>"
        f"<td>{c.evaluated}</td><td>{c.failed}</td><td>{100 * c.failure_rate:.2f}%</td></tr>"
        for c in report.failed_checks
    ]
    table = (
        '<table class="govex-checks"><thead><tr><th>Failed check</th><th>Column</th>'
        "<th>Evaluated</th><th>Failed</th><th>Failure rate</th></tr></thead><tbody>"
        + "".join(rows) + "</tbody></table>"
    ) if rows else '<p class="text-success">Every check passed.</p>'
    return (
        f"<h1>Data Docs · <code>{html.escape(run_name)}</code></h1>"
        f"<p>Great Expectations validation of suite <code>{html.escape(report.suite_name)}"
        f"</code>: {report.row_count} rows in {report.batches} batch(es), "
        f"{len(report.failed_checks)} of {len(report.checks)} checks failed.</p>" + table
    )


# ---- site --------------------------------------------------------------------------------


def data_docs_dir(run_id: str) -> Path:
    """Where a run's Data Docs go: `$GOVEX_DATA_DOCS_DIR/<run_id>`, default
    `.govex/data_docs/<run_id>` under the working directory."""
    return Path(load_settings().data_docs_dir) / run_id


def build_data_docs(
    result: GateResult | QualityReport, directory: Path | str, *, run_id: str | None = None
) -> Path:
    """Render `result` (one batch's GateResult or a run's merged QualityReport) as GE Data
    Docs in `directory`: one page, masked, escaped and hardened as the module says; returns
    the path of that page, `index.html`."""
    report = result.report if isinstance(result, GateResult) else result
    if report is None:
        msg = "this GateResult has no quality report (it came from a ContractGate alone)"
        raise ValueError(msg)
    now = dt.datetime.now(dt.UTC)
    run_name = _slug(run_id or f"govex-{now:%Y%m%dT%H%M%S}")
    return _render(_displayable(report), Path(directory), run_name, now)


# ---- deferred: the run writes the report, the page is rendered when first asked for --------
#
# Rendering imports GE (seconds) and takes a third of a second more: a run of a few rows
# would spend most of its time on a page nobody may open. So a run leaves its displayable
# report (already masked and escaped: no source value in it) as JSON beside the sites, out of
# every run's folder so that nothing serves it, and `render_pending` makes the page from it on
# the first request (the web app) or at once (`build_pending`).

_PENDING = ".pending"
_render_lock = threading.Lock()


def _pending_file(root: Path, run_id: str) -> Path:
    return root / _PENDING / f"{_slug(run_id)}.json"


def _remote(root: Path | str) -> tuple[Any, str] | None:
    """The filesystem and path of an object-storage `root` (s3://…), None for a local one."""
    return None if storage.is_local(str(root)) else storage.filesystem(str(root))


def defer_data_docs(report: QualityReport, root: Path | str, run_id: str) -> str:
    """Leave the run's report for its Data Docs page (`render_pending` makes it) at `root`, a
    local folder or an object storage URL (Settings.data_docs_location); cheap, no GE.
    Returns where it was written."""
    shown = _displayable(report)
    body = {
        "run_name": _slug(run_id),
        "time": dt.datetime.now(dt.UTC).isoformat(),
        "report": {
            "suite_name": shown.suite_name, "row_count": shown.row_count,
            "batches": shown.batches,
            "checks": [
                {"check": c.check, "column": c.column, "engine": c.engine,
                 "evaluated": c.evaluated, "failed": c.failed, "expectation": c.expectation,
                 "sample": [_plain(v) for v in c.sample], "observed": _plain(c.observed)}
                for c in shown.checks
            ],
        },
    }
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    remote = _remote(root)
    if remote is not None:  # one PUT: an object is whole or absent
        fs, base = remote
        key = f"{base}/{_PENDING}/{_slug(run_id)}.json"
        fs.pipe_file(key, data)
        return f"{str(root).split('://', 1)[0]}://{key}"
    path = _pending_file(Path(root), run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(path)  # whole or absent: a reader never sees half a report
    return str(path)


def has_pending(root: Path | str, run_id: str) -> bool:
    """Whether a run's Data Docs wait to be rendered (`root` local or object storage)."""
    remote = _remote(root)
    if remote is not None:
        fs, base = remote
        return bool(fs.exists(f"{base}/{_PENDING}/{_slug(run_id)}.json"))
    return _pending_file(Path(root), run_id).is_file()


def has_data_docs(root: Path | str, run_id: str) -> bool:
    """Whether a run has Data Docs at `root`: rendered there, or waiting to be."""
    remote = _remote(root)
    if remote is None:
        return (Path(root) / run_id / "index.html").is_file() or has_pending(root, run_id)
    fs, base = remote
    return bool(fs.exists(f"{base}/{run_id}/index.html")) or has_pending(root, run_id)


def render_pending(root: Path | str, run_id: str, into: Path | str | None = None) -> Path | None:
    """Render a run's deferred Data Docs into `into/<run_id>/index.html` (default: `root`,
    which must then be local; None when nothing waits); the report goes once the page is
    written. With `root` on object storage the page is also put beside the report there, so
    that every server of a deployment finds it, and `into` is the caller's local folder (the
    web app renders and serves from its own disk; a run's workers never render)."""
    remote = _remote(root)
    if remote is None:
        return _render_local(Path(root), run_id, Path(into or root))
    if into is None:
        msg = f"Data Docs at {root} are rendered into a local folder: name one"
        raise ValueError(msg)
    fs, base = remote
    with _render_lock:
        pending = f"{base}/{_PENDING}/{_slug(run_id)}.json"
        try:
            body = json.loads(fs.cat_file(pending).decode("utf-8"))
        except FileNotFoundError:
            return None
        index = _render_body(body, Path(into) / run_id)
        fs.pipe_file(f"{base}/{run_id}/index.html", index.read_bytes())
        fs.rm_file(pending)
        return index


def fetch_data_docs(root: Path | str, run_id: str, into: Path | str) -> Path | None:
    """The run's page in the local folder `into/<run_id>/index.html`: already there, rendered
    now from the report waiting at `root`, or copied from the page another server rendered at
    `root` (object storage). None when the run has no Data Docs."""
    local = Path(into) / run_id / "index.html"
    if local.is_file():
        return local
    rendered = render_pending(root, run_id, into)
    if rendered is not None or local.is_file():
        return rendered or local
    remote = _remote(root)
    if remote is None:
        return None
    fs, base = remote
    try:
        page = fs.cat_file(f"{base}/{run_id}/index.html")
    except FileNotFoundError:
        return None
    local.parent.mkdir(parents=True, exist_ok=True)
    partial = local.with_suffix(".part")
    partial.write_bytes(page)
    partial.replace(local)
    return local


def _render_local(root: Path, run_id: str, into: Path) -> Path | None:
    with _render_lock:
        pending = _pending_file(root, run_id)
        if not pending.is_file():
            return None
        body = json.loads(pending.read_text(encoding="utf-8"))
        index = _render_body(body, into / run_id)
        pending.unlink()
        return index


def _render_body(body: dict[str, Any], directory: Path) -> Path:
    """The page of a deferred report (`defer_data_docs`'s JSON) in `directory`."""
    data = body["report"]
    shown = QualityReport(
        suite_name=data["suite_name"], row_count=data["row_count"], batches=data["batches"],
        checks=tuple(
            CheckResult(c["check"], c["column"], c["engine"], c["evaluated"], c["failed"],
                        c["expectation"], tuple(c["sample"]), c["observed"])
            for c in data["checks"]
        ),
    )
    return _render(shown, directory, body["run_name"], dt.datetime.fromisoformat(body["time"]))


def _render(shown: QualityReport, directory: Path, run_name: str, now: dt.datetime) -> Path:
    """GE's validation page of a displayable report, hardened, as `directory/index.html`."""
    # GE is heavy to import (seconds): only the process that renders Data Docs pays for it.
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    # GE renders an expectation by looking its class up in its registry: govex's national
    # checks must be registered in this process too, which runs would otherwise never do (a run
    # without declared expectations no longer imports GE, and the web app renders).
    import quality.expectations  # noqa: F401

    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    context: Any = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.add_data_docs_site(
        site_name=_SITE,
        site_config={
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(directory),
            },
        },
    )
    validation = shown.validation_result()
    run = RunIdentifier(run_name=run_name, run_time=now)
    key = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=shown.suite_name),
        run_id=run,
        batch_identifier="run",
    )
    context.validation_results_store.set(key, validation)
    context.build_data_docs(site_names=[_SITE])
    # GE's layout: validations/<suite, split at dots>/<run name>/<run time>/<batch>.html
    pages = sorted(directory.glob("validations/**/*.html"), key=lambda p: p.stat().st_mtime)
    index = directory / "index.html"
    if pages:
        header = _summary(shown, run_name)
        page = harden_page(pages[-1].read_text(encoding="utf-8"), header)
        index.write_text(page, encoding="utf-8")
    else:  # GE logs a renderer's error and goes on: leave no unhardened index of its own
        index.unlink(missing_ok=True)
    for generated in _GE_FOLDERS:
        shutil.rmtree(directory / generated, ignore_errors=True)
    if not pages:
        msg = (f"Great Expectations rendered no validation page under {directory} (its log "
               "names the renderer's error); no Data Docs for this run")
        raise FileNotFoundError(msg)
    return index
