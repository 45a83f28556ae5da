"""Helpers for the deployment tests: the installed tools, rendering, and the PromQL that
dashboards and alert rules use (shared with tests/integration/deploy)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from cli import SERVICES
from shared.settings import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
OVERLAYS = ("dev", "production")
DASHBOARDS = sorted((DEPLOY / "grafana/dashboards").glob("*.json"))
RULE_FILES = sorted((DEPLOY / "prometheus/rules").glob("*.rules.yaml"))

# Installing the tools builds them from the Go module proxy the first time (minutes on
# a fresh machine); afterwards they are cached under .local/.
INSTALL_TIMEOUT = 1500


def install(script: str) -> Path:
    done = subprocess.run(
        ["bash", str(DEPLOY / "tools" / script)],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed:\n{done.stderr[-4000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


@cache
def kustomize() -> Path:
    return install("install-kustomize.sh")


@cache
def validator() -> Path:
    return install("install-k8s-validate.sh")


@cache
def render(overlay: str) -> str:
    done = subprocess.run(
        [str(kustomize()), "build", str(DEPLOY / "kubernetes/overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"kustomize build {overlay} failed:\n{done.stderr}")
    return done.stdout


def documents(overlay: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(render(overlay)) if d]


# -- PromQL ------------------------------------------------------------------------------

# Grafana's variables, replaced by values so that the expressions are plain PromQL.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    "$namespace": "amends",
    "$service": "ingest",
    "${datasource}": "prometheus",
}

_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "atan2", "inf", "nan", "start", "end",
}  # fmt: skip


def plain_promql(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (a regex reading, no parser)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text
    )  # grouping label lists
    names = set()
    for match in re.finditer(r"(?<![\w.$:])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()", text):
        word = match.group(1)
        if word not in _KEYWORDS:
            names.add(word)
    return names


def dashboard_expressions() -> Iterator[tuple[str, str, str]]:
    """(dashboard file, panel or variable title, expression) of every query."""
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in _panels(board.get("panels", [])):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    yield path.name, panel.get("title", "?"), target["expr"]
        for variable in board.get("templating", {}).get("list", []):
            if variable.get("type") == "query":
                query = variable["query"]
                query = query["query"] if isinstance(query, dict) else query
                match = re.fullmatch(r"label_values\((.*),\s*\w+\)", query.strip())
                if match:
                    yield path.name, f"variable {variable['name']}", match.group(1)


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def rule_expressions() -> Iterator[tuple[str, str, str]]:
    """(rule file, alert or record name, expression) of every rule."""
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                yield path.name, rule.get("alert") or rule.get("record"), rule["expr"]


# Series that Prometheus makes itself, not the services.
SCRAPE_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS"}


def referenced_metrics() -> dict[str, set[str]]:
    """Every metric name a dashboard or rule uses -> where it is used."""
    used: dict[str, set[str]] = {}
    for source, title, expr in [*dashboard_expressions(), *rule_expressions()]:
        for name in metric_names(plain_promql(expr)):
            used.setdefault(name, set()).add(f"{source}: {title}")
    return used


def exposed_series(exposition: str) -> set[str]:
    """Series names an exposition can hold, from its # TYPE lines (present for labelled
    metrics before their first sample)."""
    names = set()
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "gauge": ("",),
        "info": ("_info",),
        "untyped": ("",),
        "unknown": ("",),
        "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
        "stateset": ("",),
    }
    for line in exposition.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[:2] == ["#", "TYPE"]:
            name, kind = parts[2], parts[3]
            base = name.removesuffix("_total") if kind == "counter" else name
            for suffix in suffixes.get(kind, ("",)):
                names.add(base + suffix)
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names


def settings_environment() -> set[str]:
    """Every environment variable a service reads: the fields of shared Settings and of
    each service's settings class (a misspelt AMENDS_* name would be silently ignored)."""
    import importlib
    import inspect

    from pydantic import AliasChoices
    from pydantic_settings import BaseSettings

    from shared.settings import Settings

    classes: list[type[BaseSettings]] = [Settings]
    for service in SERVICES:
        try:
            module = importlib.import_module(f"services.{service}.settings")
        except ModuleNotFoundError:
            continue
        classes += [
            c
            for _, c in inspect.getmembers(module, inspect.isclass)
            if issubclass(c, BaseSettings) and c.__module__ == module.__name__
        ]
    names = set()
    for cls in classes:
        prefix = cls.model_config.get("env_prefix", "")
        for field_name, field in cls.model_fields.items():
            names.add(f"{prefix}{field_name}".upper())
            alias = field.validation_alias
            if isinstance(alias, AliasChoices):
                names.update(str(a).upper() for a in alias.choices)
            elif isinstance(alias, str):
                names.add(alias.upper())
    return names
