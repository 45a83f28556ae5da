"""``python -m services.followup``: serve the followup service until SIGTERM."""

from shared.service import run

from .app import build_service


def main() -> None:
    run(build_service())


if __name__ == "__main__":
    main()
