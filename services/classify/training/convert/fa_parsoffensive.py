"""ParsOffensive: Persian Instagram comments hand-labelled Offensive / Neutral.

Nazarizadeh et al., ICWR 2025; two linguists labelled 8,433 comments. Offensive ->
abusive 1, Neutral -> abusive 0 (no upset label: issue 15 point 8). No official split:
hash 80/10/10. The set ships as one .xlsx sheet (text, label), read here with the
standard library (an .xlsx is a zip of XML parts).
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from xml.etree import ElementTree

from services.classify.training.convert.common import (
    Row,
    arguments,
    clean,
    git_show,
    hash_split,
    make_row,
    write_set,
)

SET_ID = "fa_parsoffensive"
REPO = "golnaz76gh/pars-offensive-dataset"
COMMIT = "23352e29bde40ff107ae42c501f00b249f68b32e"
PATH = "ParsOffensive.xlsx"
ABUSIVE = {"offensive": 1, "neutral": 0}
_NS = {"x": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
_COLUMN = re.compile(r"[A-Z]+")


def sheet_rows(workbook: bytes) -> Iterator[list[str]]:
    """Cell texts of the first sheet, row by row (shared and inline strings)."""
    with zipfile.ZipFile(io.BytesIO(workbook)) as archive:
        shared: list[str] = []
        if "xl/sharedStrings.xml" in archive.namelist():
            strings = ElementTree.fromstring(archive.read("xl/sharedStrings.xml"))
            shared = [
                "".join(t.text or "" for t in item.iterfind(".//x:t", _NS))
                for item in strings.iterfind("x:si", _NS)
            ]
        sheet = ElementTree.fromstring(archive.read("xl/worksheets/sheet1.xml"))
    for row in sheet.iterfind(".//x:sheetData/x:row", _NS):
        cells: dict[int, str] = {}
        for cell in row.iterfind("x:c", _NS):
            match = _COLUMN.match(cell.get("r", ""))
            value = cell.find("x:v", _NS)
            if cell.get("t") == "s" and value is not None:
                text = shared[int(value.text or 0)]
            elif cell.get("t") == "inlineStr":
                text = "".join(t.text or "" for t in cell.iterfind(".//x:t", _NS))
            else:
                text = value.text or "" if value is not None else ""
            cells[_column_index(match.group()) if match else len(cells)] = text
        # A blank cell is absent from the XML: pad so columns keep their places.
        yield [cells.get(index, "") for index in range(max(cells, default=-1) + 1)]


def _column_index(letters: str) -> int:
    """``A`` -> 0, ``B`` -> 1, ``AA`` -> 26."""
    index = 0
    for letter in letters:
        index = index * 26 + ord(letter) - ord("A") + 1
    return index - 1


def parse(records: Iterator[list[str]]) -> Iterator[Row]:
    """First row is the header; then ``text, Offensive|Neutral``."""
    next(records, None)
    for number, record in enumerate(records, 2):
        if not any(field.strip() for field in record):
            continue
        if len(record) < 2 or record[1].strip().casefold() not in ABUSIVE:
            raise ValueError(f"{SET_ID}: row {number} is not text, Offensive|Neutral")
        text = clean(record[0])
        labels = {"abusive": ABUSIVE[record[1].strip().casefold()]}
        yield make_row(text, "fa", labels, SET_ID, hash_split(text), "offensive_comments")


def main() -> None:
    args = arguments(__doc__ or SET_ID)
    workbook = git_show(REPO, COMMIT, PATH, args.mirror_root)
    write_set(SET_ID, parse(sheet_rows(workbook)), args.limit)


if __name__ == "__main__":
    main()
