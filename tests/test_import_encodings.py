"""`member import` from files as spreadsheets really save them, built byte for byte: Excel's
"CSV (Comma delimited)" on Windows (Windows-1252), "CSV UTF-8" (a BOM) and "Unicode Text"
(UTF-16 with a BOM, tab-separated), all with CRLF line ends and the blank rows a sheet leaves
at the bottom."""
from __future__ import annotations

import json
import codecs

import pytest

from tests.conftest import snapshot

ROWS = [("Name", "Phone"), ("Zoë", "07911 100001"), ("Siân", "07911 100002"), ("Renée", "01522 500001")]


def sheet(rows, sep: str = ",", blank_rows: int = 2) -> str:
    lines = [sep.join(row) for row in rows] + [sep * (len(rows[0]) - 1)] * blank_rows
    return "".join(line + "\r\n" for line in lines)


FILES = {
    "windows-1252": sheet(ROWS).encode("cp1252"),
    "utf-8 with bom": codecs.BOM_UTF8 + sheet(ROWS).encode("utf-8"),
    "utf-16 unicode text": codecs.BOM_UTF16_LE + sheet(ROWS, sep="\t").encode("utf-16-le"),
}


@pytest.mark.parametrize("raw", FILES.values(), ids=FILES.keys())
def test_spreadsheet_encodings_are_read_right_and_blank_rows_skipped(ok, run_cli, tmp_path, raw):
    ok("group", "add", "G", "--timezone", "Europe/London")
    path = tmp_path / "members.csv"
    path.write_bytes(raw)
    assert raw.startswith((b"Name", codecs.BOM_UTF8, codecs.BOM_UTF16_LE))  # as Excel writes them
    result = run_cli("member", "import", "G", str(path))
    assert result.exit_code == 0, result.output
    assert result.stderr == "" and result.stdout == "Added 3 member(s) to G.\n"
    members = json.loads(ok("member", "list", "G", "--json", "--show-numbers").stdout)
    assert [(m["name"], m["phone"]) for m in members] == [
        ("Zoë", "+447911100001"), ("Siân", "+447911100002"), ("Renée", "+441522500001")]


def test_a_windows_1252_file_that_is_not_utf8_is_detected_not_mangled(ok, tmp_path):
    raw = sheet([("Name", "Phone"), ("Zoë", "07911 100001"), ("Bronwën", "07911 100002")]).encode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # the bytes a UTF-8 reader used to replace with U+FFFD
    ok("group", "add", "G", "--timezone", "Europe/London")
    (tmp_path / "m.csv").write_bytes(raw)
    ok("member", "import", "G", str(tmp_path / "m.csv"))
    names = [m["name"] for m in json.loads(ok("member", "list", "G", "--json").stdout)]
    assert names == ["Zoë", "Bronwën"]


def test_errors_name_the_line_of_the_file(ok, run_cli, engine, tmp_path):
    ok("group", "add", "G", "--timezone", "Europe/London")
    # An address cell over two lines (quoted, as spreadsheets write it) and a blank line: the
    # bad row is on line 6 of the file, though it is the 4th row.
    text = ('Name,Phone,Address\r\n'
            'Vera,07911 100001,"1 Mill Lane\r\nLincoln"\r\n'
            '\r\n'
            'Jo,07911 100002,\r\n'
            'Pat,07700 900123,\r\n')
    (tmp_path / "m.csv").write_bytes(text.encode("utf-8"))
    before = snapshot(engine)
    result = run_cli("member", "import", "G", str(tmp_path / "m.csv"))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == ("rejected line 6: Pat: '07700 900123' is not a real phone number; "
                                             "check the digits (e.g. 07911 100001)")
    assert snapshot(engine) == before


def test_a_foreign_number_in_a_uk_group_is_flagged(ok, run_cli, tmp_path):
    ok("group", "add", "G", "--timezone", "Europe/London")
    (tmp_path / "m.csv").write_bytes(b"Name,Phone\r\nVera,07911 100001\r\nAnne,+33 6 12 34 56 78\r\n")
    result = run_cli("member", "import", "G", str(tmp_path / "m.csv"))
    assert result.exit_code == 0
    assert result.stderr == "Warning: line 3: Anne: +33 6 12 34 56 78 is a number abroad, not a UK one; check it.\n"
    assert "Added 2 member(s)" in result.stdout


def test_a_number_already_in_the_group_is_rejected_in_an_import(ok, run_cli, tmp_path):
    ok("group", "add", "G", "--timezone", "Europe/London")
    ok("member", "add", "G", "Vera", "--phone", "07911 100001")
    (tmp_path / "m.csv").write_bytes(b"Name,Phone\r\nBill,07911 100001\r\n")
    result = run_cli("member", "import", "G", str(tmp_path / "m.csv"))
    assert result.exit_code == 1
    assert "rejected line 2: Bill: Vera in G already has that number" in result.stderr
