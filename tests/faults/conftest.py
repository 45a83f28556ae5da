"""Fault tests: the services as processes over the real servers, one fault mid-stream.

Marked ``faults`` (and ``e2e``: they run the services as processes). The scenarios that
restart Kafka or the database do so on private servers of their own (``infra.py``), never
on the shared local ones; they run last all the same (file names order them).
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "faults: fault injection against the real servers (tests/faults)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/faults/" in str(item.fspath):
            item.add_marker(pytest.mark.faults)
            item.add_marker(pytest.mark.e2e)
