# ruff: noqa: RUF001  (non-Latin letters are the point of a multilingual lexicon)
"""Find lexicon cues in a text: one trie-shaped regex per language, one pass per text."""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from .lexicons import LEXICONS

# Latin diacritics, Turkish dotless i and German sharp s fold away; Persian letters take
# one form; ZWNJ becomes a space (Persian verbs are written both ways).
_FOLD: dict[int, str] = {}
for _code in range(0xC0, 0x250):
    _base = "".join(
        c for c in unicodedata.normalize("NFKD", chr(_code)) if not unicodedata.combining(c)
    )
    if _base and _base != chr(_code):
        _FOLD[_code] = _base.lower()
_FOLD.update(
    {
        ord("ı"): "i",
        ord("ß"): "ss",
        0x307: "",  # combining dot left by "İ".lower()
        ord("ي"): "ی",
        ord("ى"): "ی",
        ord("ك"): "ک",
        ord("ة"): "ه",
        ord("أ"): "ا",
        ord("إ"): "ا",
        0x200C: " ",
        0x2019: "'",
        0x2018: "'",
        0x64B: "",
        0x64C: "",
        0x64D: "",
        0x64E: "",
        0x64F: "",
        0x650: "",
        0x651: "",
        0x652: "",
    }
)
_FOLD_TABLE = str.maketrans(_FOLD)
_SPACES = re.compile(r"\s+")


def fold(text: str) -> str:
    return _SPACES.sub(" ", text.lower().translate(_FOLD_TABLE))


@dataclass
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    whole: bool = False
    prefix: bool = False


def _pattern(node: _Node) -> str:
    if node.prefix:
        return r"\w*"
    branches = []
    for char, child in sorted(node.children.items()):
        branches.append(re.escape(char) + _pattern(child))
    if node.whole:
        branches.append(r"(?!\w)")
    if len(branches) == 1:
        return branches[0]
    return "(?:" + "|".join(branches) + ")"


@dataclass(frozen=True)
class Matcher:
    """All cues of a set of languages: a trie regex plus term -> cues tables."""

    regex: re.Pattern[str]
    whole: Mapping[str, tuple[str, ...]]
    prefixes: Mapping[str, tuple[str, ...]]
    prefix_lengths: tuple[int, ...]

    @classmethod
    def build(cls, languages: Iterable[str]) -> Matcher:
        whole: dict[str, set[str]] = defaultdict(set)
        prefixes: dict[str, set[str]] = defaultdict(set)
        for language in languages:
            for cue, terms in LEXICONS[language].items():
                for raw in terms.split("|"):
                    term = fold(raw.strip())
                    if term.endswith("*") and len(term) > 1:
                        prefixes[term[:-1]].add(cue)
                    elif term:
                        whole[term].add(cue)
        root = _Node()
        for term in whole:
            node = root
            for char in term:
                node = node.children.setdefault(char, _Node())
            node.whole = True
        for term in prefixes:
            node = root
            for char in term:
                node = node.children.setdefault(char, _Node())
            node.prefix = True
        regex = re.compile(r"(?<!\w)" + _pattern(root))
        return cls(
            regex=regex,
            whole={k: tuple(sorted(v)) for k, v in whole.items()},
            prefixes={k: tuple(sorted(v)) for k, v in prefixes.items()},
            prefix_lengths=tuple(sorted({len(p) for p in prefixes}, reverse=True)),
        )

    def find(self, folded: str) -> dict[str, list[str]]:
        """cue -> matched terms (in text order) for an already folded text."""
        found: dict[str, list[str]] = {}
        for match in self.regex.finditer(folded):
            term = match.group()
            cues = set(self.whole.get(term, ()))
            for length in self.prefix_lengths:
                if length <= len(term):
                    cues.update(self.prefixes.get(term[:length], ()))
            for cue in cues:
                found.setdefault(cue, []).append(term)
        return found


@lru_cache(maxsize=32)
def matcher_for(language: str) -> Matcher:
    """A text's own language plus English (often mixed in); every language if unknown."""
    if language not in LEXICONS:
        return Matcher.build(LEXICONS)
    return Matcher.build({language, "en"})


def find_cues(text: str, language: str) -> dict[str, list[str]]:
    return matcher_for(language).find(fold(text))
