"""MongoDB update documents applied in memory, and the update that turns one document into
another.

A batch handler decides several records of one document in a row, each as the update it
would have sent alone; ``applied`` gives the document after each, and ``difference`` the
one update that stores the end result (sent once, behind the handler's own guard). Only
the operators the services use: ``$set``, ``$unset``, ``$setOnInsert``, ``$inc``,
``$min``, ``$max``, ``$addToSet`` and ``$push`` (both with ``$each``), on dotted paths.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

Document = dict[str, Any]


def _parent(doc: Document, path: str) -> tuple[Document, str]:
    *parents, leaf = path.split(".")
    node = doc
    for name in parents:
        child = node.get(name)
        if not isinstance(child, dict):
            child = node[name] = {}
        node = child
    return node, leaf


def _each(value: Any) -> list[Any]:
    if isinstance(value, Mapping) and "$each" in value:
        return list(value["$each"])
    return [value]


def applied(doc: Mapping[str, Any] | None, update: Mapping[str, Any]) -> Document:
    """``doc`` after ``update`` (``doc`` None: the upsert's insert, with ``$setOnInsert``).
    ``doc`` itself is left as it was."""
    inserting = doc is None
    out: Document = copy.deepcopy(dict(doc or {}))
    for op, fields in update.items():
        if op == "$setOnInsert" and not inserting:
            continue
        for path, value in fields.items():
            node, leaf = _parent(out, path)
            if op in ("$set", "$setOnInsert"):
                node[leaf] = copy.deepcopy(value)
            elif op == "$unset":
                node.pop(leaf, None)
            elif op == "$inc":
                node[leaf] = node.get(leaf, 0) + value
            elif op == "$min":
                if leaf not in node or node[leaf] is None or value < node[leaf]:
                    node[leaf] = value
            elif op == "$max":
                if leaf not in node or node[leaf] is None or value > node[leaf]:
                    node[leaf] = value
            elif op == "$addToSet":
                items = node.setdefault(leaf, [])
                for item in _each(value):
                    if item not in items:
                        items.append(copy.deepcopy(item))
            elif op == "$push":
                node.setdefault(leaf, []).extend(copy.deepcopy(_each(value)))
            else:
                raise ValueError(f"operator {op} is not applied in memory")
    return out


def _plain(key: str) -> bool:
    return bool(key) and "." not in key and not key.startswith("$")


def difference(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> Document:
    """The update that makes ``before`` into ``after`` (``_id`` aside): ``$set`` of what
    changed, ``$unset`` of what went, sub-documents compared field by field (so a field
    someone else changed in a sub-document is left alone), lists replaced whole."""
    sets: Document = {}
    unsets: Document = {}

    def walk(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str) -> None:
        for key, value in new.items():
            if not prefix and key == "_id":
                continue
            if key in old and old[key] == value:
                continue
            was = old.get(key)
            if (
                isinstance(was, Mapping)
                and isinstance(value, Mapping)
                and all(_plain(k) for k in (*was, *value))
            ):
                walk(was, value, f"{prefix}{key}.")
            else:
                sets[f"{prefix}{key}"] = value
        for key in old:
            if key not in new and not (not prefix and key == "_id"):
                unsets[f"{prefix}{key}"] = ""

    walk(before or {}, after, "")
    update: Document = {}
    if sets:
        update["$set"] = sets
    if unsets:
        update["$unset"] = unsets
    return update
