"""AsyncAPI documents generated from each service's code into docs/asyncapi/."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import orjson

from cli import SERVICES
from shared.settings import REPO_ROOT


def render(service_name: str) -> bytes:
    from cli.docs import default_environment

    module = importlib.import_module(f"services.{service_name}.app")
    with default_environment():
        service = module.build_service()
    schema = service.asgi().schema.to_specification().to_jsonable()
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def write_documents(out: str, *, check: bool = False) -> int:
    folder = (REPO_ROOT / out) if not Path(out).is_absolute() else Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    stale = []
    for name in SERVICES:
        path = folder / f"{name}.json"
        document = render(name)
        if check:
            if not path.exists() or path.read_bytes() != document:
                stale.append(str(path))
        else:
            path.write_bytes(document)
            print(f"wrote {path}")
    if stale:
        print(
            "AsyncAPI documents are stale: " + ", ".join(stale) + "; run `make asyncapi`",
            file=sys.stderr,
        )
        return 1
    return 0
