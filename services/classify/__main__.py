"""`python -m services.classify` serves the classify service."""

from shared.service import run

from .app import build_service

if __name__ == "__main__":
    run(build_service())
