"""The README and the AsyncAPI documents say what the code does."""

from __future__ import annotations

from cli import asyncapi, docs
from shared.events.catalogue import CATALOGUE
from shared.settings import REPO_ROOT


def test_readme_generated_sections_are_current() -> None:
    readme = docs.README.read_text()
    assert docs.render(readme) == readme, "run `amends docs`"


def test_every_setting_and_topic_is_in_the_readme() -> None:
    readme = docs.README.read_text()
    for _, cls in docs.settings_classes():
        for field_name in cls.model_fields:
            assert any(f"`{name}`" in readme for name in docs.env_names(cls, field_name)), (
                f"{cls.__name__}.{field_name} is not in the configuration reference"
            )
    for spec in CATALOGUE:
        assert f"`{spec.topic}`" in readme and f"`{spec.event_type}`" in readme


def test_readme_has_the_sections_a_platform_team_needs() -> None:
    readme = docs.README.read_text()
    for heading in (
        "## Quick start",
        "## Configuration reference",
        "## Event catalogue",
        "## Connecting a CRM",
        "### Worked example: Zendesk",
        "### Worked example: Salesforce",
        "## Operations runbook",
        "## Deploy on Kubernetes",
        "## Measured results",
        "## Delivery guarantees",
        "## Security",
    ):
        assert heading in readme, heading
    assert "make run" in readme and "make test" in readme


def test_asyncapi_documents_are_current() -> None:
    folder = REPO_ROOT / "docs" / "asyncapi"
    for name in asyncapi.SERVICES:
        assert (folder / f"{name}.json").read_bytes() == asyncapi.render(name), (
            "run `make asyncapi`"
        )
