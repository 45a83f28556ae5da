"""What every converter shares: reading a pinned source, normalising, splitting, writing.

A converted row is ``{"text", "language", "labels", "source", "split", "domain"}``.
Converted data is never committed (the sets come from fetched public repositories);
converters write to ``$AMENDS_TRIAGE_DATA`` (default ``<repo>/.local/triage-data``).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import random
import re
import subprocess
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from shared.settings import REPO_ROOT

Row = dict[str, Any]
SPLITS = ("train", "valid", "test")
MIRROR_ROOT = Path(os.environ.get("AMENDS_MIRROR_ROOT", "/work/.mirror"))
SHARED_EVAL = REPO_ROOT.parent / "shared" / "eval"
MAX_ROWS = 30_000
_SPACE = re.compile(r"\s+")


def data_dir() -> Path:
    """Where converted sets live (git-ignored by default)."""
    return Path(os.environ.get("AMENDS_TRIAGE_DATA", REPO_ROOT / ".local" / "triage-data"))


def normalise(text: str) -> str:
    """The key for de-duplication: NFKC, case-folded, whitespace collapsed."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def clean(text: str) -> str:
    """Text as a customer wrote it, minus surrounding space and NUL/control noise."""
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    return text.strip()


def hash_split(text: str, shares: tuple[float, float] = (0.8, 0.1)) -> str:
    """train/valid/test by a hash of the normalised text: stable, duplicates together."""
    digest = hashlib.blake2b(normalise(text).encode(), digest_size=8).digest()
    position = int.from_bytes(digest, "big") / 2**64
    if position < shares[0]:
        return "train"
    return "valid" if position < shares[0] + shares[1] else "test"


def git_show(repo: str, commit: str, path: str, mirror_root: Path = MIRROR_ROOT) -> bytes:
    """One file of a fetched mirror (a bare git dir ``owner+name``) at a pinned commit."""
    git_dir = next(
        (p for p in (mirror_root / repo.replace("/", "+")).glob("**/HEAD") if p.is_file()),
        None,
    )
    if git_dir is None:
        raise SystemExit(f"no mirror of {repo} under {mirror_root} (fetch it with the search tool)")
    done = subprocess.run(
        ["git", "--git-dir", str(git_dir.parent), "show", f"{commit}:{path}"],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{repo}@{commit}:{path}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def make_row(
    text: str, language: str, labels: dict[str, int], source: str, split: str, domain: str
) -> Row:
    return {
        "text": text,
        "language": language,
        "labels": labels,
        "source": source,
        "split": split,
        "domain": domain,
    }


def dedupe(rows: Iterable[Row]) -> list[Row]:
    """First occurrence of each normalised text; a text seen with two labels is dropped."""
    first: dict[str, Row] = {}
    conflicting: set[str] = set()
    for row in rows:
        if not row["text"]:
            continue
        key = normalise(row["text"])
        if key in first:
            if first[key]["labels"] != row["labels"]:
                conflicting.add(key)
            continue
        first[key] = row
    return [row for key, row in first.items() if key not in conflicting]


def cap(rows: list[Row], limit: int = MAX_ROWS, seed: int = 13) -> list[Row]:
    """At most ``limit`` rows per split, sampled per label so label shares are kept."""
    out: list[Row] = []
    for split in SPLITS:
        part = [r for r in rows if r["split"] == split]
        if len(part) <= limit:
            out.extend(part)
            continue
        groups: dict[str, list[Row]] = {}
        for row in part:
            groups.setdefault(json.dumps(row["labels"], sort_keys=True), []).append(row)
        rng = random.Random(seed)
        for key in sorted(groups):
            group = groups[key]
            take = round(limit * len(group) / len(part))
            out.extend(rng.sample(group, min(take, len(group))))
    return out


def write_set(set_id: str, rows: Iterable[Row], limit: int = MAX_ROWS) -> Path:
    """De-duplicate, cap, write ``<set_id>.jsonl.gz``; prints the counts per split."""
    final = cap(dedupe(rows), limit)
    target = data_dir() / f"{set_id}.jsonl.gz"
    target.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0: the same input gives byte-identical output.
    with gzip.GzipFile(target, "wb", mtime=0) as raw:
        for row in final:
            raw.write((json.dumps(row, ensure_ascii=False) + "\n").encode())
    counts = {s: sum(1 for r in final if r["split"] == s) for s in SPLITS}
    print(f"{set_id}: {counts} -> {target}")
    return target


def read_set(path: Path) -> Iterator[Row]:
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            yield json.loads(line)


def arguments(description: str) -> argparse.Namespace:
    """The one command line every converter takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--mirror-root",
        type=Path,
        default=MIRROR_ROOT,
        help="folder of fetched mirrors (owner+name)",
    )
    parser.add_argument("--limit", type=int, default=MAX_ROWS, help="rows per split at most")
    return parser.parse_args()


def train_or_valid(text: str, split: str) -> str:
    """For sets that ship no dev split: rows of the train file go 90 % train / 10 % valid
    by hash; rows of any other file keep that file's split."""
    return hash_split(text, (0.9, 0.1)) if split == "train" else split


def read_files(
    repo: str,
    commit: str,
    files: Mapping[str, str],
    mirror_root: Path = MIRROR_ROOT,
    encoding: str = "utf-8",
) -> dict[str, str]:
    """Several files of one pinned mirror, decoded, under the keys given (often split names)."""
    return {
        key: git_show(repo, commit, path, mirror_root).decode(encoding)
        for key, path in files.items()
    }


def official_or_pooled(
    parse: Callable[[str, str | None], Iterable[Row]], dev: str, test: str, train: Path
) -> list[Row]:
    """Sets whose official train file is too large for a snapshot.

    With ``train`` present (placed in ../shared/eval) the official splits are used;
    without it the dev and test files are pooled and split by hash (``split=None``).
    """
    if train.is_file():
        official = train.read_text(encoding="utf-8")
        return [*parse(official, "train"), *parse(dev, "valid"), *parse(test, "test")]
    return [*parse(dev, None), *parse(test, None)]


def convert_pinned(
    set_id: str,
    repo: str,
    commit: str,
    path: str,
    parse: Callable[[str], Iterable[Row]],
    *,
    encoding: str = "utf-8",
    errors: str = "strict",
    description: str | None = None,
) -> Path:
    """The whole ``main`` of a converter whose set is one pinned file of a fetched mirror."""
    args = arguments(description or set_id)
    raw = git_show(repo, commit, path, args.mirror_root).decode(encoding, errors)
    return write_set(set_id, parse(raw), args.limit)
