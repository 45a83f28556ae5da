"""Render ``DATA.md`` (the data manifest table) from the per-set YAML entries in ``sets/``.

``python -m services.classify.training.data_manifest`` rewrites DATA.md; a unit test
checks that the committed file matches the YAML, so the two cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).parent
SETS_DIR = HERE / "sets"
PENDING_DIR = SETS_DIR / "pending"  # converter ready, raw file not yet in ../shared/eval
DATA_MD = HERE / "DATA.md"
REQUIRED = (
    "id",
    "language",
    "domain",
    "source",
    "licence",
    "redistributable",
    "citation",
    "rows",
    "label_mapping",
    "splits",
)

HEADER = """# Triage training data (issue 15)

Generated from `sets/*.yaml` by `python -m services.classify.training.data_manifest`;
edit the YAML, not this file. Each set is converted by `convert/<id>.py` into
`$AMENDS_TRIAGE_DATA/<id>.jsonl.gz` (never committed: the raw sets come from fetched
public repositories, pinned below). Rows are `{"text", "language", "labels", "source",
"split", "domain"}`; `labels` is `{"upset": 0|1}` for sentiment / complaint sets and
`{"abusive": 0|1}` for the offensive-language sets (issue 15 point 8).
`redistributable: no` marks an NC or unclear licence: such a set may be used to fit and
measure, but its data must not be shipped.

"""
COLUMNS = (
    "set",
    "lang",
    "domain",
    "source (repo@commit:path)",
    "licence",
    "redistributable",
    "rows train / valid / test",
    "label mapping",
    "splits",
)


def load_sets(sets_dir: Path = SETS_DIR) -> list[dict[str, Any]]:
    """Every manifest entry, sorted by id; a missing field is an error."""
    entries = []
    for path in sorted(sets_dir.glob("*.yaml")):
        entry = yaml.safe_load(path.read_text(encoding="utf-8"))
        missing = [key for key in REQUIRED if key not in (entry or {})]
        if missing:
            raise ValueError(f"{path.name}: missing {', '.join(missing)}")
        if entry["id"] != path.stem:
            raise ValueError(f"{path.name}: id {entry['id']!r} differs from the file name")
        entries.append(entry)
    return sorted(entries, key=lambda entry: str(entry["id"]))


def _cell(value: object) -> str:
    return " ".join(str(value).split()).replace("|", "\\|")


def _table(entries: list[dict[str, Any]]) -> list[str]:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for entry in entries:
        rows = entry["rows"]
        counts = " / ".join(f"{rows.get(split, 0):,}" for split in ("train", "valid", "test"))
        cells = [
            f"`{entry['id']}`",
            entry["language"],
            entry["domain"],
            f"`{_cell(entry['source'])}`",
            entry["licence"],
            "yes" if entry["redistributable"] else "no",
            counts,
            entry["label_mapping"],
            entry["splits"],
        ]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return lines


def render(entries: list[dict[str, Any]], pending: list[dict[str, Any]] | None = None) -> str:
    lines = [HEADER.rstrip("\n"), *_table(entries)]
    if pending:
        lines += [
            "",
            "## Pending (converter ready; raw file to be placed in `../shared/eval/<id>/`)",
            "",
            *_table(pending),
        ]
    lines.append("")
    lines.append("## Notes per set")
    lines.append("")
    for entry in [*entries, *(pending or [])]:
        lines.append(
            f"- `{entry['id']}` ({_cell(entry['citation'])}): {_cell(entry.get('notes', ''))}"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    DATA_MD.write_text(render(load_sets(), load_sets(PENDING_DIR)), encoding="utf-8")
    print(f"wrote {DATA_MD}")


if __name__ == "__main__":
    main()
