"""A leaked file is hostile input: whatever it is, `govex leak identify` ends in one sentence on
stderr naming the file and what is wrong, exit 2, and never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from exchange.cli import main
from exchange.leak import files
from tests.disclosure.city import City


def _refused(capsys: pytest.CaptureFixture[str], path: Path, code: str = "PSB-RES-001") -> str:
    capsys.readouterr()
    assert main(["leak", "identify", str(path), "--resource", code]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in captured.err
    return lines[0]


@pytest.mark.parametrize(("name", "content", "says"), [
    ("empty.csv", b"", "is empty"),
    ("blank.csv", b"\n\n  \n", "is empty"),
    ("image.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "binary file"),
    ("header.csv", b"id_no,name\n", "holds no rows, only a header"),
    ("ragged.csv", b"id_no,name\n1,2\n3\n", "line 3 has 1 values, the header 2"),
    ("twice.csv", b"id_no,id_no\n1,2\n", "names column 'id_no' twice"),
    ("nameless.csv", b"id_no,\n1,2\n", "a column without a name"),
    ("broken.jsonl", b'{"id_no": "1"}\n{"id_no": \n', "line 2 is not JSON"),
    ("list.jsonl", b'{"id_no": "1"}\n[1, 2]\n', "line 2 is not an object"),
    ("latin.csv", "id_no,name\n1,caf\xe9\n".encode("latin-1") + b"\xff\xfe\xfd\n",
     "neither UTF-8 nor GB18030"),
])
def test_a_file_that_is_not_a_table(
    catalogued: City, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    name: str, content: bytes, says: str,
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    line = _refused(capsys, path)
    assert str(path) in line
    assert says in line


def test_a_huge_field(catalogued: City, tmp_path: Path,
                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "huge.csv"
    path.write_text("id_no,name\n1," + "x" * (files.MAX_FIELD_BYTES + 10) + "\n")
    line = _refused(capsys, path)
    assert "field larger than field limit" in line
    assert f"at most {files.MAX_FIELD_BYTES} bytes" in line
    huge = tmp_path / "huge.jsonl"
    huge.write_text('{"name": "' + "x" * (4 * files.MAX_FIELD_BYTES + 10) + '"}\n')
    assert "longer than" in _refused(capsys, huge)


def test_a_missing_file_and_an_unknown_resource(
    catalogued: City, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "is not a file" in _refused(capsys, tmp_path / "nowhere.csv")
    path = tmp_path / "ok.csv"
    path.write_text("id_no,phone\n110105198001010008,138****0000\n")
    assert "unknown resource 'NO-SUCH-001'" in _refused(capsys, path, "NO-SUCH-001")


def test_gb18030_and_a_byte_order_mark_are_read(tmp_path: Path) -> None:
    """What spreadsheet programs write: GB18030 text, or UTF-8 with a byte-order mark."""
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("姓名,电话\n张*,138****0000\n".encode("gb18030"))
    read = files.read_leaked(gbk)
    assert (read.encoding, read.table.column_names) == ("gb18030", ["姓名", "电话"])
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeff姓名,电话\n张*,\n".encode())
    read = files.read_leaked(bom)
    assert read.table.column_names == ["姓名", "电话"]
    assert read.table.column("电话").to_pylist() == [None]  # an empty cell is null


def test_only_the_first_rows_are_read(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    path.write_text("".join(f'{{"n": {i}, "ok": true, "x": 1.5}}\n' for i in range(10)))
    read = files.read_leaked(path, max_rows=4)
    assert (read.format, read.truncated, read.table.num_rows) == ("jsonl", True, 4)
    assert read.table.column("n").to_pylist() == ["0", "1", "2", "3"]
    assert read.table.column("ok").to_pylist() == ["true"] * 4
