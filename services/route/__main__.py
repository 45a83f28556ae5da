"""``python -m services.route`` serves the route service."""

from __future__ import annotations

from shared.service import run

from .app import build_service
from .settings import RouteSettings

if __name__ == "__main__":
    run(build_service(RouteSettings()))
