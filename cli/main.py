"""The `amends` command: run the pipeline, manage local servers, inspect and operate it."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

SERVICES = ("ingest", "classify", "route", "followup")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="amends",
        description="amends: catch complaints on every channel, score, route and follow them up.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="start servers and the four services, feed the sample stream, print a summary",
        description="Start the local Kafka and MongoDB-protocol server (unless "
        "KAFKA_BOOTSTRAP_SERVERS / MONGODB_URL are set) and the four services, feed N "
        "complaints from the bundled multilingual sample stream, show progress and end with "
        "a summary that accounts for every input. Uses the database 'amends_demo' (dropped "
        "first) and the topic prefix 'demo.' unless AMENDS_MONGODB_DATABASE / "
        "AMENDS_TOPIC_PREFIX are set.",
    )
    run.add_argument("--count", type=int, default=300, help="complaints to feed (default 300)")
    run.add_argument(
        "--rate", type=float, default=100.0, help="complaints per second, 0 = as fast as possible"
    )
    run.add_argument(
        "--exit-when-done",
        action="store_true",
        help="stop the services after the summary instead of running until Ctrl-C",
    )
    run.add_argument("--json", action="store_true", help="print the summary as JSON only")
    run.add_argument(
        "--timeout", type=float, default=300.0, help="give up waiting after this many seconds"
    )

    infra = commands.add_parser(
        "infra",
        help="manage the local Kafka and MongoDB-protocol server",
        description="Install (first time), start, stop or check the local servers in "
        "deploy/local/. Data and logs live in .local/. A server whose URL is set in the "
        "environment (KAFKA_BOOTSTRAP_SERVERS, MONGODB_URL) is external and left alone.",
    )
    infra.add_argument("action", choices=("up", "down", "status"), help="what to do")

    serve = commands.add_parser(
        "serve",
        help="run one service in the foreground (what the container runs)",
        description="Run one service: its Kafka consumers, /healthz, /readyz, /metrics and "
        "/asyncapi on AMENDS_HTTP_HOST:AMENDS_HTTP_PORT. Stops gracefully on SIGTERM.",
    )
    serve.add_argument("service", choices=SERVICES)

    asyncapi = commands.add_parser(
        "asyncapi",
        help="write each service's AsyncAPI document",
        description="Generate docs/asyncapi/<service>.json from the code; with --check, fail "
        "when the files differ from what the code generates.",
    )
    asyncapi.add_argument("--out", default="docs/asyncapi", help="output folder")
    asyncapi.add_argument("--check", action="store_true", help="fail if the files are stale")

    triage = commands.add_parser(
        "triage-eval",
        help="measure the classifier on labelled JSONL",
        description="Score rows {text, language, labels} and print precision, recall, F1 and "
        "support per language and label, plus texts per second.",
        add_help=False,
    )
    triage.add_argument("args", nargs=argparse.REMAINDER, help="FILE.jsonl [--json]")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["triage-eval"]:
        # The classifier owns its evaluation command and its --help.
        from services.classify import evaluation

        return int(evaluation.main(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    if args.command == "run":
        from cli import run

        return run.main(args.count, args.rate, args.exit_when_done, args.json, args.timeout)
    if args.command == "infra":
        from cli.infra import infra

        return infra(args.action)
    if args.command == "serve":
        from shared.service import run as serve

        module = importlib.import_module(f"services.{args.service}.app")
        serve(module.build_service())
        return 0
    if args.command == "asyncapi":
        from cli.asyncapi import write_documents

        return write_documents(args.out, check=args.check)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
