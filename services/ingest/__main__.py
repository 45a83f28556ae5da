from shared.service import run

from .app import build_service

run(build_service())
