"""The container image and the compose file, checked statically (no Docker engine here):
a multi-stage Dockerfile on a pinned base, compilers only in the build stage, a non-root
final stage that runs any service by command; the compose file loads and validates
against the Compose Specification (compose-go, what `docker compose` uses) and runs
Kafka, MongoDB, the four services, Prometheus and Grafana with the dashboards."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from shared.settings import REPO_ROOT
from tests.unit.deploy.support import DEPLOY, SERVICES, settings_environment, validator

DOCKERFILE = REPO_ROOT / "Dockerfile"
COMPOSE = DEPLOY / "compose/compose.yaml"


def stages() -> list[dict[str, object]]:
    """The Dockerfile's stages: base image, name and instructions (continuations joined)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    text = re.sub(r"<<'?(\w+)'?\n.*?\n\1\n", "<<heredoc\n", text, flags=re.S)
    args: dict[str, str] = {}
    result: list[dict[str, object]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "ARG" and not result and "=" in rest:
            name, _, value = rest.partition("=")
            args[name] = value
        elif keyword == "FROM":
            parts = rest.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], parts[0])
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            result.append({"image": image, "name": name, "lines": []})
        elif result:
            result[-1]["lines"].append((keyword, rest))  # type: ignore[attr-defined]
    return result


def test_dockerfile_is_multi_stage_on_a_pinned_base() -> None:
    all_stages = stages()
    assert len(all_stages) >= 2
    for stage in all_stages:
        image = str(stage["image"])
        if image in {s["name"] for s in all_stages}:
            continue
        tag = image.split("@")[0].rsplit(":", 1)[-1]
        pinned = "@sha256:" in image or re.fullmatch(r"\d+\.\d+\.\d+(-[a-z0-9.-]+)?", tag)
        assert pinned, f"base image {image} is neither an exact version nor a digest"


def test_final_stage_has_no_build_tools_and_runs_as_non_root() -> None:
    build, *_, final = stages()
    final_lines: list[tuple[str, str]] = final["lines"]  # type: ignore[assignment]
    build_lines: list[tuple[str, str]] = build["lines"]  # type: ignore[assignment]
    runs = " ".join(rest for keyword, rest in final_lines if keyword == "RUN")
    assert "apt-get install" not in runs and "build-essential" not in runs
    assert "pip install" not in runs
    assert "pip uninstall" in runs, "the final stage removes pip from the base image"
    assert any("build-essential" in rest for k, rest in build_lines if k == "RUN")
    copies = [rest for keyword, rest in final_lines if keyword == "COPY"]
    assert copies and all(c.startswith(f"--from={build['name']}") for c in copies)
    users = [rest for keyword, rest in final_lines if keyword == "USER"]
    assert users, "no USER in the final stage"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"} and (not user.isdigit() or int(user) >= 1000)
    entrypoint = [rest for keyword, rest in final_lines if keyword == "ENTRYPOINT"]
    assert entrypoint and shlex.split(entrypoint[-1].strip("[]").replace(",", " ")) == ["amends"]
    env = " ".join(rest for keyword, rest in final_lines if keyword == "ENV")
    assert "AMENDS_HTTP_HOST=0.0.0.0" in env and "PYTHONDONTWRITEBYTECODE=1" in env
    assert "HEALTHCHECK" in {keyword for keyword, _ in final_lines}


def test_the_uid_matches_the_kubernetes_security_context() -> None:
    text = DOCKERFILE.read_text()
    assert "USER 10001:10001" in text
    deployment = yaml.safe_load((DEPLOY / "kubernetes/base/deployment-ingest.yaml").read_text())
    security = deployment["spec"]["template"]["spec"]["securityContext"]
    assert (security["runAsUser"], security["runAsGroup"]) == (10001, 10001)


def test_dockerignore_keeps_local_state_out_of_the_context() -> None:
    lines = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "allow-list: ignore everything, then name what goes in"
    included = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert included == {"pyproject.toml", "shared", "services", "cli"}
    copied = re.findall(r"^COPY (?!--from)(\S+)", DOCKERFILE.read_text(), flags=re.M)
    assert {c.rstrip("/") for c in copied} <= included


def test_compose_runs_kafka_mongodb_the_services_prometheus_and_grafana() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert set(services) == {"kafka", "mongodb", *SERVICES, "prometheus", "grafana"}
    ports = set()
    for name in SERVICES:
        service = services[name]
        assert service["command"] == ["serve", name]
        assert service["build"]["dockerfile"] == "Dockerfile"
        assert (COMPOSE.parent / service["build"]["context"] / "Dockerfile").exists()
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
        assert service["user"] == "10001:10001"
        assert int(service["stop_grace_period"].rstrip("s")) > 20
        env = service["environment"]
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["MONGODB_URL"].startswith("mongodb://mongodb:27017")
        assert set(service["depends_on"]) == {"kafka", "mongodb"}
        assert set(env) <= settings_environment(), set(env) - settings_environment()
        ports.update(service["ports"])
    assert len(ports) == len(SERVICES)
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), (name, source)
            else:
                assert source in compose["volumes"], (name, source)
    for name in ("kafka", "mongodb", "prometheus", "grafana"):
        image = services[name]["image"]
        assert ":" in image and not image.endswith(":latest"), image


@pytest.mark.timeout(1800)  # the first run builds the validator
def test_compose_file_is_valid_against_the_compose_specification() -> None:
    done = subprocess.run(
        [str(validator()), "compose", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)
    for name in SERVICES:
        assert services[name]["command"] == ["serve", name]
        assert services[name]["build"] == str(REPO_ROOT / "Dockerfile")
        assert services[name]["user"] == "10001:10001"


def test_compose_prometheus_scrapes_every_service_and_loads_the_rules() -> None:
    config = yaml.safe_load((DEPLOY / "compose/prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "amends"]
    assert job["honor_labels"] is True
    targets = {t["labels"]["service"]: t["targets"] for t in job["static_configs"]}
    assert targets == {name: [f"{name}:8000"] for name in SERVICES}
    assert all(t["labels"]["namespace"] for t in job["static_configs"])
    compose = yaml.safe_load(COMPOSE.read_text())
    mounts = dict(v.split(":")[1::-1] for v in compose["services"]["prometheus"]["volumes"])
    (pattern,) = config["rule_files"]
    folder = Path(mounts[str(Path(pattern).parent)])
    assert list((COMPOSE.parent / folder).glob(Path(pattern).name))
