"""The Kubernetes manifests: every overlay renders with kustomize (installed by
deploy/tools/install-kustomize.sh) and every resource decodes strictly into the API types
of a current Kubernetes release, KEDA and the Prometheus Operator, and Strimzi's
KafkaTopic schema (deploy/tools/k8s-validate); then amends' own invariants."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from shared.events.catalogue import CATALOGUE, dead_letter_topic
from tests.unit.deploy.support import (
    DEPLOY,
    OVERLAYS,
    SERVICES,
    documents,
    render,
    settings_environment,
    validator,
)

# The first run builds kustomize and the validator from the Go module proxy.
pytestmark = pytest.mark.timeout(1800)

CONSUMER_GRACEFUL_TIMEOUT = 15  # KafkaBroker graceful_timeout
UVICORN_GRACEFUL_SHUTDOWN = 20  # shared/service.py run(): timeout_graceful_shutdown
PRE_STOP_SLEEP_MAX = 5


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def amends_deployments(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d
        for d in of_kind(docs, "Deployment")
        if d["metadata"]["labels"].get("app.kubernetes.io/part-of") == "amends"
    }


def consumed_topics(service: str) -> set[str]:
    return {spec.topic for spec in CATALOGUE if service in spec.consumers}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_every_resource_is_valid(overlay: str) -> None:
    done = subprocess.run(
        [str(validator()), "k8s", "-"],
        input=render(overlay),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert " 0 invalid" in done.stdout


def test_validator_rejects_unknown_fields_and_bad_values() -> None:
    bad = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  replica: 2
  selector: {matchLabels: {a: b}}
  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: i}]}}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: s}
spec:
  scaleTargetRef: {name: x}
  minReplicaCount: 5
  maxReplicaCount: 2
  triggers: [{type: kafka, metadata: {}}]
---
apiVersion: kafka.strimzi.io/v1
kind: KafkaTopic
metadata: {name: t, labels: {strimzi.io/cluster: c}}
spec: {partitions: 0, replicas: 3}
---
apiVersion: monitoring.coreos.com/v1
kind: PodMonitor
metadata: {name: p}
spec: {selector: {}, podMetricsEndpoints: [{port: http, honourLabels: true}]}
"""
    done = subprocess.run(
        [str(validator()), "k8s", "-"], input=bad, capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    assert 'unknown field "spec.replica"' in done.stdout
    assert "MinReplicaCount=5 must be less than MaxReplicaCount=2" in done.stdout
    assert "spec.partitions must be >= 1" in done.stdout
    assert "honourLabels" in done.stdout
    assert "4 documents, 4 invalid" in done.stdout


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_has_a_hardened_deployment(overlay: str) -> None:
    docs = documents(overlay)
    deployments = amends_deployments(docs)
    assert set(deployments) == set(SERVICES)
    for service, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        grace = pod["terminationGracePeriodSeconds"]
        assert grace > UVICORN_GRACEFUL_SHUTDOWN + PRE_STOP_SLEEP_MAX > CONSUMER_GRACEFUL_TIMEOUT
        assert pod["serviceAccountName"] == "amends"
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] > 0
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        (container,) = pod["containers"]
        assert container["args"] == ["serve", service]
        security = container["securityContext"]
        assert security["runAsNonRoot"] is True
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert "add" not in security["capabilities"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"http": 8000}
        for kind in ("requests", "limits"):
            assert set(container["resources"][kind]) == {"cpu", "memory"}, (service, kind)
        pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert pre_stop <= PRE_STOP_SLEEP_MAX
        sources = container["envFrom"]
        assert any(
            s.get("configMapRef", {}).get("name", "").startswith("amends-config") for s in sources
        )
        assert any(
            s.get("secretRef", {}).get("name", "").startswith("amends-secrets") for s in sources
        )
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/tmp" in mounts


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_in_the_overlay_drops_capabilities_and_runs_as_non_root(
    overlay: str,
) -> None:
    for doc in documents(overlay):
        if doc["kind"] not in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            continue
        pod = doc["spec"]["template"]["spec"]
        for container in pod["containers"] + pod.get("initContainers", []):
            security = container["securityContext"]
            name = f"{doc['metadata']['name']}/{container['name']}"
            assert security.get("runAsNonRoot") or pod["securityContext"]["runAsNonRoot"], name
            assert security["capabilities"]["drop"] == ["ALL"], name
            assert security["allowPrivilegeEscalation"] is False, name
            assert container["resources"]["limits"]["memory"], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_references_resolve(overlay: str) -> None:
    docs = documents(overlay)
    config_maps = {d["metadata"]["name"] for d in of_kind(docs, "ConfigMap")}
    secrets = {d["metadata"]["name"] for d in of_kind(docs, "Secret")}
    accounts = {d["metadata"]["name"] for d in of_kind(docs, "ServiceAccount")}
    # Production's Secret is created by the operator (deploy/kubernetes/README.md).
    external_secrets = {"amends-secrets"} if overlay == "production" else set()
    for deployment in amends_deployments(docs).values():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] in accounts
        for source in pod["containers"][0]["envFrom"]:
            if "configMapRef" in source:
                assert source["configMapRef"]["name"] in config_maps
            if "secretRef" in source:
                assert source["secretRef"]["name"] in secrets | external_secrets
    if overlay == "production":
        assert "amends-secrets" not in secrets, "no secret values in the repository"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_configured_variables_are_settings_the_services_read(overlay: str) -> None:
    known = settings_environment()
    for doc in documents(overlay):
        name = doc["metadata"]["name"]
        if doc["kind"] in {"ConfigMap", "Secret"} and name.startswith(
            ("amends-config", "amends-secrets")
        ):
            unknown = set(doc.get("data", {})) - known
            assert not unknown, f"{name}: not settings of amends: {sorted(unknown)}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_disruption_budgets_network_policies_and_monitoring(overlay: str) -> None:
    docs = documents(overlay)
    deployments = amends_deployments(docs)
    budgets = {
        d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for d in of_kind(docs, "PodDisruptionBudget")
    }
    assert budgets >= {d["metadata"]["name"] for d in deployments.values()}
    policies = {d["metadata"]["name"]: d["spec"] for d in of_kind(docs, "NetworkPolicy")}
    deny = policies["amends-default-deny"]
    assert deny["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny and "egress" not in deny
    egress_ports = {
        p["port"] for rule in policies["amends-egress"]["egress"] for p in rule["ports"]
    }
    assert {53, 9092, 27017} <= egress_ports
    monitors = of_kind(docs, "PodMonitor")
    if overlay == "production":
        (monitor,) = monitors
        endpoint = monitor["spec"]["podMetricsEndpoints"][0]
        assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
        assert monitor["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/part-of": "amends"}
        assert of_kind(docs, "PrometheusRule")
    dashboards = [
        d for d in of_kind(docs, "ConfigMap") if d["metadata"]["labels"].get("grafana_dashboard")
    ]
    assert len(dashboards) == 2


def test_production_scales_each_consumer_group_on_lag_up_to_its_partitions() -> None:
    docs = documents("production")
    deployments = amends_deployments(docs)
    partitions = {
        t["spec"]["topicName"]: t["spec"]["partitions"] for t in of_kind(docs, "KafkaTopic")
    }
    scaled = {d["spec"]["scaleTargetRef"]["name"]: d for d in of_kind(docs, "ScaledObject")}
    groups = [s for s in SERVICES if consumed_topics(s)]
    assert set(scaled) == {f"amends-{s}" for s in groups}
    known_metadata = {
        "bootstrapServers", "bootstrapServersFromEnv", "consumerGroup", "topic",
        "lagThreshold", "activationLagThreshold", "offsetResetPolicy", "allowIdleConsumers",
        "excludePersistentLag", "limitToPartitionsWithLag", "scaleToZeroOnInvalidOffset",
        "sasl", "tls", "version", "partitionLimitation",
    }  # fmt: skip
    for service in groups:
        obj = scaled[f"amends-{service}"]["spec"]
        triggers = obj["triggers"]
        assert {t["type"] for t in triggers} == {"kafka"}
        assert {t["metadata"]["consumerGroup"] for t in triggers} == {f"amends-{service}"}
        topics = {t["metadata"]["topic"] for t in triggers}
        assert topics == consumed_topics(service)
        for trigger in triggers:
            assert set(trigger["metadata"]) <= known_metadata
            assert int(trigger["metadata"]["lagThreshold"]) > 0
            assert trigger["metadata"]["allowIdleConsumers"] == "false"
        assert 1 <= obj["minReplicaCount"] <= obj["maxReplicaCount"]
        assert obj["maxReplicaCount"] <= max(partitions[t] for t in topics)
        # KEDA owns the replica count: a fixed one in the Deployment would fight it.
        assert "replicas" not in deployments[service]["spec"]


def test_production_has_a_kafka_topic_for_every_catalogue_topic_and_dead_letter_topic() -> None:
    docs = documents("production")
    topics = {t["spec"]["topicName"]: t for t in of_kind(docs, "KafkaTopic")}
    expected = {spec.topic for spec in CATALOGUE}
    expected |= {
        dead_letter_topic(spec.topic) for spec in CATALOGUE if set(spec.consumers) & set(SERVICES)
    }
    assert set(topics) == expected
    for topic in topics.values():
        assert topic["metadata"]["namespace"] == "kafka"
        assert topic["metadata"]["labels"]["strimzi.io/cluster"]
        assert topic["spec"]["replicas"] >= 3
        assert topic["spec"]["config"]["min.insync.replicas"] >= 2
    (config,) = [
        c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"].startswith("amends-config")
    ]
    assert config["data"]["AMENDS_CREATE_TOPICS"] == "false"
    assert config["data"]["AMENDS_HTTP_HOST"] == "0.0.0.0"


def test_dev_runs_one_replica_each_with_its_own_kafka_and_mongodb() -> None:
    docs = documents("dev")
    for deployment in amends_deployments(docs).values():
        assert deployment["spec"]["replicas"] == 1
    assert {d["metadata"]["name"] for d in of_kind(docs, "StatefulSet")} == {"kafka", "mongodb"}
    assert not of_kind(docs, "ScaledObject")
    assert {d["metadata"]["namespace"] for d in docs if d["kind"] != "Namespace"} == {"amends-dev"}


def test_generated_files_are_current() -> None:
    done = subprocess.run(
        [sys.executable, str(DEPLOY / "tools/generate.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
