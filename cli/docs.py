"""README sections generated from the code: the configuration reference and the event
catalogue. `amends docs` rewrites them between their markers; `--check` fails when the
README is stale (the test suite runs the check)."""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel
from pydantic_settings import BaseSettings

from cli import SERVICES
from shared.events.catalogue import CATALOGUE, dead_letter_topic
from shared.settings import REPO_ROOT, Settings

README = REPO_ROOT / "README.md"


def settings_classes() -> Iterator[tuple[str, type[BaseSettings]]]:
    yield "all services", Settings
    for name in SERVICES:
        module = importlib.import_module(f"services.{name}.settings")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, Settings)
                and cls is not Settings
                and cls.__module__ == module.__name__
            ):
                yield name, cls


def env_names(cls: type[BaseSettings], field_name: str) -> list[str]:
    field = cls.model_fields[field_name]
    alias = field.validation_alias
    if alias is not None and hasattr(alias, "choices"):
        return [str(choice) for choice in alias.choices]
    prefix = cls.model_config.get("env_prefix", "")
    return [f"{prefix}{field_name}".upper()]


def _default(value: object) -> str:
    if isinstance(value, Path):
        # Paths inside the checkout are shown relative to it: the same on every machine.
        value = str(value.relative_to(REPO_ROOT)) if value.is_relative_to(REPO_ROOT) else str(value)
    if hasattr(value, "get_secret_value"):
        secret = value.get_secret_value()
        return secret if "@" not in secret else "(secret)"  # show defaults without credentials
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) < 60 else text[:57] + "..."


# Defaults that read these variables (local ports) are documented as they are unset.
_PORT_VARIABLES = ("KAFKA_PORT", "MONGO_PORT")


@contextmanager
def default_environment() -> Iterator[None]:
    """Generated documents describe the defaults, not this machine's port overrides."""
    saved = {name: os.environ.pop(name) for name in _PORT_VARIABLES if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def settings_table() -> str:
    with default_environment():
        return _settings_table()


def _settings_table() -> str:
    rows = ["| scope | environment variable | default | meaning |", "|---|---|---|---|"]
    for scope, cls in settings_classes():
        for field_name, field in cls.model_fields.items():
            if scope != "all services" and field_name in Settings.model_fields:
                continue
            default = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
            names = " or ".join(f"`{n}`" for n in env_names(cls, field_name))
            description = (field.description or "").replace("|", "\\|").replace("\n", " ")
            rows.append(f"| {scope} | {names} | `{_default(default)}` | {description} |")
    return "\n".join(rows)


def catalogue_table() -> str:
    rows = [
        "| topic | event type | version | key | producer | consumers | what |",
        "|---|---|---|---|---|---|---|",
    ]
    for spec in CATALOGUE:
        rows.append(
            f"| `{spec.topic}` | `{spec.event_type}` | {spec.version} | {spec.key} | "
            f"{spec.producer} | {', '.join(spec.consumers)} | {spec.description} |"
        )
    consumed = sorted({s.topic for s in CATALOGUE if any(c in SERVICES for c in s.consumers)})
    rows.append(
        "\nEvery consumed topic has a dead-letter topic: "
        + ", ".join(f"`{dead_letter_topic(t)}`" for t in consumed)
        + "."
    )
    return "\n".join(rows)


def example_payloads() -> str:
    from shared.events import examples

    parts = []
    for spec in CATALOGUE:
        if spec.schema is None:
            continue
        example: BaseModel = examples.EXAMPLES[spec.topic]
        parts.append(
            f"<details><summary><code>{spec.topic}</code> ({spec.event_type})</summary>\n\n"
            f"```json\n{example.model_dump_json(indent=2, exclude_none=True)}\n```\n</details>"
        )
    return "\n\n".join(parts)


SECTIONS = {"settings": settings_table, "catalogue": catalogue_table, "examples": example_payloads}


def render(readme: str) -> str:
    for name, make in SECTIONS.items():
        pattern = re.compile(rf"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)", flags=re.DOTALL)
        if not pattern.search(readme):
            raise SystemExit(f"README.md lacks the markers <!-- BEGIN {name} --> / END")
        readme = pattern.sub(_replacement(make()), readme)
    return readme


def _replacement(text: str) -> Callable[[re.Match[str]], str]:
    return lambda match: match.group(1) + text + "\n" + match.group(2)


def main(check: bool = False) -> int:
    current = README.read_text()
    updated = render(current)
    if check:
        if updated != current:
            print("README.md generated sections are stale: run `amends docs`", file=sys.stderr)
            return 1
        return 0
    README.write_text(updated)
    print("README.md sections updated: " + ", ".join(SECTIONS))
    return 0
