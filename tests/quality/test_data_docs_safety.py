"""Data Docs are safe to serve: failing values are masked and escaped before Great Expectations
renders them, every other string it shows is escaped, and the page it writes is rewritten to
hold no script, no event handler, no load from anywhere and no link off the page."""

from __future__ import annotations

import datetime as dt
import html
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

import quality
import quality.expectations  # noqa: F401 - registers govex's national checks with GE
from quality.docs import MASK_NOTE, harden_page, mask_value
from quality.report import CheckResult, QualityReport

IMG = ("<img src=x onerror=\"fetch('/api/v1/disputes').then(r=>r.text())"
       ".then(t=>document.title='PWNED:'+t.length)\">")
SCRIPT = "<script>document.title='PWNED'</script>"
# What a hostile contract could put where GE shows declarations.
COLUMN = '"><svg onload=alert(1)>'
REGEX = "</span><script>alert(2)</script>"
LOOKBEHIND = r"^(?<!\s)[0-9]{17}[0-9X]$"  # a legitimate regex GE must show as written


@pytest.mark.parametrize(("value", "masked"), [
    ("11010519900101123X", "99999999999999999A"),
    ("11010519900101123x", "99999999999999999a"),
    ("张三", "**"),
    ("１２３", "***"),  # full-width digits are not digits to a format check
    ("a\tb\n", "a*a*"),
    ("2026-13-01", "9999-99-99"),
    (dt.date(1990, 1, 1), "9999-99-99"),
    (1234.5, "9999.9"),
    (-7, "-9"),
    ("", "(empty)"),
    (None, None),
    (IMG, "<aaa aaa=a aaaaaaa=\"aaaaa('/aaa/a9/aaaaaaaa').aaaa(a=>a.aaaa()).… (107 chars)"),
    (SCRIPT, "<aaaaaa>aaaaaaaa.aaaaa='AAAAA'</aaaaaa>"),
])
def test_mask_value_keeps_the_shape_only(value: Any, masked: str | None) -> None:
    assert mask_value(value) == masked


def test_a_long_value_is_cut_and_its_length_named() -> None:
    masked = mask_value("9" * 500)
    assert masked == "9" * 64 + "… (500 chars)"


class _Tags(HTMLParser):
    """Every element and attribute a browser would build from the page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: list[tuple[str, str, str | None]] = []
        self.styles: list[str] = []
        self._style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs += [(tag, k, v) for k, v in attrs]
        self._style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._style = False

    def handle_data(self, data: str) -> None:
        if self._style:
            self.styles.append(data)


def _assert_inert(page: str) -> _Tags:
    parsed = _Tags()
    parsed.feed(page)
    assert not parsed.tags & {"script", "img", "link", "iframe", "object", "embed", "svg",
                              "form", "input", "button", "base", "meta"} - {"meta"}
    for tag, name, value in parsed.attrs:
        assert not name.startswith("on"), (tag, name, value)
        assert name not in {"src", "srcset", "srcdoc", "action", "formaction", "background"}
        if name == "href":
            assert value is not None
            assert value.startswith("#"), (tag, value)
        if tag == "meta":
            assert name in {"charset", "name", "content"}, (tag, name, value)
    css = "\n".join(parsed.styles) + "\n".join(v or "" for _, k, v in parsed.attrs if k == "style")
    assert "url(" not in css
    assert "@import" not in css
    assert "http:" not in page
    assert "https:" not in page
    return parsed


@pytest.fixture(scope="module")
def hostile_docs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Data Docs of a report whose failing values and declarations are attacks."""
    regex_check = CheckResult(
        check="cn_resident_id", column="id_no", engine="ge", evaluated=10, failed=3,
        expectation={"type": "expect_column_values_to_match_regex",
                     "kwargs": {"column": "id_no", "regex": REGEX},
                     "meta": {"govex_check": "cn_resident_id", "note": IMG}},
        sample=(IMG, SCRIPT, "11010519900101123x"),
    )
    column_check = CheckResult(
        check="required", column=COLUMN, engine="ge", evaluated=10, failed=1,
        expectation={"type": "expect_column_values_to_not_be_null",
                     "kwargs": {"column": COLUMN}},
        sample=(None,),
    )
    max_check = CheckResult(
        check="max", column="name", engine="ge", evaluated=10, failed=10,
        expectation={"type": "expect_column_max_to_be_between",
                     "kwargs": {"column": "name", "max_value": 5}},
        observed=SCRIPT,
    )
    lookbehind = CheckResult(
        check="pattern", column="id_no", engine="ge", evaluated=10, failed=0,
        expectation={"type": "expect_column_values_to_match_regex",
                     "kwargs": {"column": "id_no", "regex": LOOKBEHIND}},
    )
    pair = CheckResult(  # a govex national check: GE has no renderer for it
        check="id_gender_consistency", column="gender", engine="ge", evaluated=10, failed=0,
        expectation={"type": "expect_column_pair_values_to_be_consistent_id_gender",
                     "kwargs": {"column_A": COLUMN, "column_B": "gender"}},
    )
    report = QualityReport(suite_name="govex.psb<b>@1", row_count=10,
                           checks=(regex_check, column_check, max_check, lookbehind, pair))
    directory = tmp_path_factory.mktemp("hostile-docs") / "docs"
    index = quality.build_data_docs(report, directory, run_id="run-<1>")
    return directory, index.read_text(encoding="utf-8")


def test_the_docs_are_one_self_contained_page(hostile_docs: tuple[Path, str]) -> None:
    directory, _page = hostile_docs
    assert sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*")) == [
        "index.html"
    ]


def test_failing_values_are_masked_and_escaped(hostile_docs: tuple[Path, str]) -> None:
    _, page = hostile_docs
    for raw in (IMG, SCRIPT, "onerror", "PWNED", "document.title", "11010519900101123x"):
        assert raw not in page, raw
    # Shown once escaped: the browser displays the shape as text.
    assert html.escape(mask_value(IMG) or "", quote=False) in page
    assert html.escape(mask_value(SCRIPT) or "", quote=False) in page
    assert "99999999999999999a" in page
    assert html.escape(MASK_NOTE) in page


def test_declarations_ge_shows_are_escaped(hostile_docs: tuple[Path, str]) -> None:
    _, page = hostile_docs
    for raw in (COLUMN, REGEX, "<svg", "<b>", "onerror"):
        assert raw not in page, raw
    assert "expect_column_pair_values_to_be_consistent_id_gender" in page  # rendered, escaped
    for declared in (REGEX, COLUMN, LOOKBEHIND):  # escaped once (by GE or by govex), not twice
        shown = html.escape(declared, quote=False)
        assert shown in page, declared
        assert html.escape(shown, quote=False) not in page, declared
    assert "run-_1_" in page  # the run name is a slug: it is a path part too
    assert "govex.psb_b_@1" in page


def test_the_page_loads_nothing_and_runs_nothing(hostile_docs: tuple[Path, str]) -> None:
    _, page = hostile_docs
    parsed = _assert_inert(page)
    assert {"table", "td", "style"} <= parsed.tags  # still a page with its tables
    assert "cdn" not in page.lower()
    assert "bootstrap" not in page.lower() or "bootstrap-table" not in page


def test_the_page_names_its_failed_checks(hostile_docs: tuple[Path, str]) -> None:
    _, page = hostile_docs
    assert "<code>cn_resident_id</code>" in page
    assert "3 of 5 checks failed" in page


def test_a_page_ge_could_not_render_leaves_no_unhardened_site(tmp_path: Path) -> None:
    """GE logs a renderer's error and writes its own index anyway (CDN scripts and all):
    nothing of it may stay to be served."""
    broken = CheckResult(
        check="max", column="age", engine="ge", evaluated=1, failed=1,
        expectation={"type": "expect_column_max_to_be_between",
                     "kwargs": {"column": "age", "max_value": "not a number"}},
    )
    report = QualityReport(suite_name="govex.broken@1", row_count=1, checks=(broken,))
    with pytest.raises(FileNotFoundError, match="no validation page"):
        quality.build_data_docs(report, tmp_path / "docs", run_id="run-1")
    assert list((tmp_path / "docs").iterdir()) == []


@pytest.mark.parametrize("attack", [
    '<a href="javascript:alert(1)">x</a>',
    '<a href=" JaVa&#x09;script:alert(1)">x</a>',
    '<a href="//evil.example/">x</a>',
    '<a href="https://evil.example/">x</a>',
    '<a href="/api/v1/disputes">x</a>',
    '<div onclick="alert(1)" onmouseover=alert(1)>x</div>',
    "<style>@import url(https://evil.example/x.css); body{background:url('https://x/y')}</style>",
    '<div style="background:url(https://evil.example/x)">x</div>',
    '<meta http-equiv="refresh" content="0;url=https://evil.example/">',
    '<meta http-equiv="Content-Security-Policy" content="script-src *">',
    "<svg><script>alert(1)</script></svg>",
    '<svg onload="alert(1)"><a xlink:href="javascript:alert(1)">x</a></svg>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<object data="https://evil.example/x.swf"></object>',
    '<form action="/api/v1/disputes" method="post"><button>go</button></form>',
    '<img src=x onerror="alert(1)" alt="logo">',
    '<link rel="stylesheet" href="https://cdn.example/bootstrap.css">',
    '<base href="https://evil.example/">',
    "<script src=https://code.jquery.com/jquery.js></script>",
    "<!-- <script>alert(1)</script> -->",
    "<noscript><p>x</p></noscript>",
    "<math><mtext><script>alert(1)</script></mtext></math>",
])
def test_harden_page_leaves_nothing_active(attack: str) -> None:
    page = harden_page(f"<!DOCTYPE html><html><head><title>t</title></head><body>{attack}"
                       "<p>kept</p></body></html>")
    _assert_inert(page)
    assert "alert(" not in page
    assert "evil" not in page
    assert "<p>kept</p>" in page


def test_harden_page_escapes_text_and_is_idempotent() -> None:
    source = ('<html><head><meta charset="UTF-8"><title>a &amp; b</title>'
              '<style>.x>td{color:red}</style></head>'
              '<body><td>&lt;script&gt;alert(1)&lt;/script&gt;</td>'
              '<a href="#section-2" class="nav-link">jump</a></body></html>')
    once = harden_page(source, header="<h1>Run</h1>")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in once
    assert "<script" not in once
    assert ".x>td{color:red}" in once  # CSS is not text: no entities in it
    assert '<a href="#section-2" class="nav-link">jump</a>' in once
    assert once.index("<meta charset") < once.index("<style data-govex>")  # charset first
    assert harden_page(once, header="<h1>Run</h1>") == once
    assert once.count("<h1>Run</h1>") == 1
