"""Grafana dashboards and Prometheus alert rules: they parse (the PromQL with Prometheus'
own parser, the rule files with its rulefmt), have the variables and alerts the
operations issue asks for, and name metrics the Prometheus way. That every metric they
use is exported is tests/integration/deploy/test_metrics_exist.py."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml

from tests.unit.deploy.support import (
    DASHBOARDS,
    DEPLOY,
    RULE_FILES,
    SCRAPE_SERIES,
    dashboard_expressions,
    metric_names,
    plain_promql,
    referenced_metrics,
    rule_expressions,
    validator,
)

pytestmark = pytest.mark.timeout(1800)


def parse_promql(expressions: list[str]) -> list[dict[str, object]]:
    done = subprocess.run(
        [str(validator()), "promql"],
        input="".join(json.dumps(e) + "\n" for e in expressions),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_dashboards_are_grafana_json_with_namespace_and_service_variables() -> None:
    assert {p.name for p in DASHBOARDS} == {
        "amends-pipeline-health.json",
        "amends-complaint-operations.json",
    }
    uids = set()
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        uids.add(board["uid"])
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert {"datasource", "namespace", "service"} <= set(variables), path.name
        for name in ("namespace", "service"):
            assert variables[name]["type"] == "query"
            assert variables[name]["includeAll"] and variables[name]["multi"]
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, (path.name, panel["title"])
            if panel["type"] == "row":
                continue
            assert panel["targets"], (path.name, panel["title"])
            assert panel["datasource"]["uid"] == "${datasource}"
            for target in panel["targets"]:
                # Every query follows the variables (the template is the whole point).
                assert '$namespace"' in target["expr"], (path.name, panel["title"])
                assert 'service=~"$service"' in target["expr"], (path.name, panel["title"])
    assert len(uids) == len(DASHBOARDS)


def test_dashboards_cover_the_pipeline_and_the_operations() -> None:
    used: dict[str, set[str]] = {}
    for source, _title, expr in dashboard_expressions():
        used.setdefault(source, set()).update(metric_names(plain_promql(expr)))
    assert {
        "amends_messages_processed_total",
        "amends_message_handling_seconds_bucket",
        "amends_consumer_lag_messages",
        "amends_dead_letters_total",
        "amends_retries_total",
    } <= used["amends-pipeline-health.json"]
    assert {
        "amends_complaints_received_total",
        "amends_urgency_score_bucket",
        "amends_sla_breaches_total",
        "amends_csat_score_bucket",
        "amends_queue_length",
        "amends_spike_alerts_total",
    } <= used["amends-complaint-operations.json"]


def test_every_expression_parses_and_the_regex_reading_matches_the_parser() -> None:
    queries = [*dashboard_expressions(), *rule_expressions()]
    plain = [plain_promql(expr) for _, _, expr in queries]
    for (source, title, _), result in zip(queries, parse_promql(plain), strict=True):
        assert "error" not in result, f"{source}: {title}: {result}"
        # The integration test extracts names with the regex: it must agree.
        assert set(result["metrics"]) == metric_names(result["expr"]), f"{source}: {title}"


def test_metric_names_follow_prometheus_conventions() -> None:
    for name, where in referenced_metrics().items():
        if name in SCRAPE_SERIES:
            continue
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name), name
        assert name.startswith(("amends_", "faststream_", "process_", "python_")), (name, where)
        if name.endswith("_bucket"):
            assert re.search(r"_(seconds|bytes|messages|score|ratio)_bucket$", name), name


def test_rule_files_are_valid_prometheus_rules() -> None:
    done = subprocess.run(
        [str(validator()), "rules", *map(str, RULE_FILES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_alerts_cover_lag_dead_letters_sla_service_down_and_spikes() -> None:
    alerts = {}
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                alerts[rule["alert"]] = rule
    for rule in alerts.values():
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    uses = {name: metric_names(rule["expr"]) for name, rule in alerts.items()}
    needs = {
        "consumer lag growing": "amends_consumer_lag_messages",
        "dead-letter rate": "amends_dead_letters_total",
        "SLA breaches": "amends_sla_breaches_total",
        "a service down": "up",
        "spike alerts": "amends_spike_alerts_total",
    }
    for what, metric in needs.items():
        assert any(metric in names for names in uses.values()), f"no alert for {what}"


def test_kubernetes_prometheus_rule_carries_the_same_rules() -> None:
    (source,) = RULE_FILES
    generated = yaml.safe_load(
        (DEPLOY / "kubernetes/base/monitoring/prometheusrule.yaml").read_text()
    )
    assert generated["kind"] == "PrometheusRule"
    assert generated["spec"]["groups"] == yaml.safe_load(source.read_text())["groups"]


def test_grafana_provisioning_points_at_the_dashboards() -> None:
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/amends.yaml").read_text())[
        "providers"
    ][0]
    compose = yaml.safe_load((DEPLOY / "compose/compose.yaml").read_text())
    mounts = {}  # container path -> host path or volume
    for volume in compose["services"]["grafana"]["volumes"]:
        source, target = volume.split(":")[:2]
        mounts[target] = source
    assert mounts[provider["options"]["path"]] == "../grafana/dashboards"
    datasource = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yaml").read_text()
    )["datasources"][0]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
