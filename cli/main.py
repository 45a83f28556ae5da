"""The `amends` command: run the pipeline, manage local servers, inspect and operate it."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from cli import SERVICES


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
        "a summary that accounts for every input and the commands to try next. Uses the "
        "database 'amends_demo' (dropped first) and the topic prefix 'demo.' unless "
        "AMENDS_MONGODB_DATABASE / AMENDS_TOPIC_PREFIX are set, and remembers them in "
        ".local/run/demo.json: `amends case|stats|dlq|replay` on the same servers then read "
        "this run without flags.",
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

    observe = commands.add_parser(
        "observe",
        help="start a local Prometheus that scrapes the running services and loads the alerts",
        description="Build Prometheus once from the Go module proxy (pinned, into .local/bin), "
        "then start it on 127.0.0.1:9090 (PROMETHEUS_PORT). It scrapes the services of the "
        "running `amends run` (the ports it wrote to .local/run/scrape-targets.json) and "
        "evaluates deploy/prometheus/rules/*.rules.yaml. deploy/local/prometheus.sh does the "
        "work.",
    )
    observe.add_argument(
        "action", nargs="?", default="up", choices=("up", "down", "status"), help="default: up"
    )

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

    docs = commands.add_parser(
        "docs",
        help="regenerate the README's configuration reference and event catalogue",
        description="Rewrite the README sections generated from the code (settings classes, "
        "topic catalogue, example payloads); with --check, fail when they are stale.",
    )
    docs.add_argument("--check", action="store_true", help="fail if README.md is stale")

    triage = commands.add_parser(
        "triage-eval",
        help="measure the classifier on labelled JSONL",
        description="Score rows {text, language, labels} and print precision, recall, F1 and "
        "support per language and label, plus texts per second.",
        add_help=False,
    )
    triage.add_argument("args", nargs=argparse.REMAINDER, help="FILE.jsonl [--json]")
    train = commands.add_parser(
        "triage-train",
        help="rebuild the classifier's text model (needs the train extra)",
        description="Fit the text model on $AMENDS_TRIAGE_DATA and ../shared/eval; write "
        "services/classify/models/ (weights, thresholds, calibration, MODEL.md).",
        add_help=False,
    )
    train.add_argument("args", nargs=argparse.REMAINDER, help="[--search] [--allow-missing]")
    add_operator_commands(commands)
    return parser


TIME_HELP = "ISO 8601 (2024-05-01, 2024-05-01T08:00:00Z) or relative: 30m, 24h, 7d, 2w"


def add_operator_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`amends case`, `stats`, `replay` and `dlq`: look into and operate the pipeline."""
    case = commands.add_parser(
        "case",
        help="show one case's whole timeline (by case id, external id, email or phone)",
        description="Show a case: every contact on every channel, urgency with its "
        "contributions, category/profile/flags/hints, assignment with reasons and history, "
        "escalations, SLA clocks, promises, follow-ups, satisfaction and lesson. QUERY is a "
        "case id, an external id 'source:id' (e.g. zendesk:12345), an email address or a "
        "phone number (any format; read as E.164). When a customer has several cases they "
        "are listed newest first and the newest is shown.",
    )
    case.add_argument("query", metavar="QUERY", help="case id, source:id, email or phone")
    case.add_argument("--json", action="store_true", help="print the raw case document as JSON")
    case.add_argument(
        "--all",
        action="store_true",
        help="show every matching case, not only the newest (with --json: a JSON array)",
    )

    stats = commands.add_parser(
        "stats",
        help="open cases, SLA, response and resolution times, CSAT, dead letters",
        description="Figures computed by MongoDB aggregations on indexed fields: cases by "
        "status; open cases by priority, team and channel; SLA met/breached (followup's "
        "measures plus open cases overdue now); median time to first response and to "
        "resolution; CSAT mean and distribution; dead letters by reason. Creates the "
        "indexes it needs on first use.",
    )
    stats.add_argument(
        "--since",
        metavar="T",
        help=f"only cases opened (and dead letters failed) at or after T: {TIME_HELP}",
    )
    stats.add_argument("--json", action="store_true", help="print the figures as JSON")

    replay = commands.add_parser(
        "replay",
        help="backfill historical complaints from JSONL or CSV into the intake topic",
        description="Send every record of FILE to complaints.intake as a CloudEvent with a "
        "deterministic id (file sha256 + record number) and its original time, showing "
        'progress. JSONL lines are {"sourceformat": ..., "payload": ...} or, with '
        "--source, bare payloads. CSV needs --mapping (a JSON column mapping, or 'cfpb'). "
        "Resumable: .local/replay/<file sha256>.json keeps the last acknowledged record; "
        "re-sent records carry the same id, so ingest drops them.",
    )
    replay.add_argument("file", metavar="FILE", help="a .jsonl or .csv file")
    replay.add_argument(
        "--source",
        metavar="S",
        help="source format (ingest adapter name) of "
        "bare JSONL payloads, e.g. webform, email, zendesk",
    )
    replay.add_argument(
        "--rate",
        metavar="R",
        type=float,
        default=0.0,
        help="records per second (default 0: as fast as Kafka takes them)",
    )
    replay.add_argument(
        "--mapping",
        metavar="M",
        help="CSV column mapping: a JSON file "
        "(see cli/replay.py CsvMapping) or 'cfpb' for a CFPB export",
    )
    mode = replay.add_mutually_exclusive_group()
    mode.add_argument(
        "--resume",
        dest="restart",
        action="store_false",
        default=False,
        help="continue after the last acknowledged record (default)",
    )
    mode.add_argument(
        "--restart",
        dest="restart",
        action="store_true",
        help="ignore the checkpoint and send the whole file again",
    )
    replay.add_argument(
        "--window",
        type=int,
        default=500,
        metavar="N",
        help="records in flight between checkpoints (default 500)",
    )
    replay.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="send at most N records in this run, then stop (resume later)",
    )
    replay.add_argument(
        "--checkpoint-dir", metavar="DIR", help="where checkpoints live (default .local/replay)"
    )
    replay.add_argument("--json", action="store_true", help="print the result as JSON")

    dlq = commands.add_parser(
        "dlq",
        help="list, show and redrive dead letters (read from the *.dlq topics)",
        description="Read the dead-letter topics (<prefix><topic>.dlq) from Kafka, from the "
        "beginning. Entries are named <dlq topic>:<partition>:<offset>, e.g. "
        "complaints.intake.dlq:0:12.",
    )
    actions = dlq.add_subparsers(dest="dlq_action", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list",
        help="list dead letters",
        description="List dead letters: entry, failed-at, reason, "
        "detail, service, event id, and whether it was redriven.",
    )
    show = actions.add_parser(
        "show",
        help="show one dead letter: headers and original bytes",
        description="Show one entry's headers and its original bytes (pretty-printed when JSON).",
    )
    show.add_argument("ref", metavar="ENTRY", help="e.g. complaints.intake.dlq:0:12")
    redrive = actions.add_parser(
        "redrive",
        help="send dead letters back to their original topic, once",
        description="Produce each entry's original value, key and headers (without x-dlq-*) "
        "to its original topic, then record it in the dlq_redrives collection; recorded "
        "entries are skipped. Name entries, or select them with filters, or use --all.",
    )
    redrive.add_argument("refs", metavar="ENTRY", nargs="*", help="entries to redrive")
    redrive.add_argument("--all", action="store_true", help="redrive every dead letter")
    redrive.add_argument("--dry-run", action="store_true", help="show what would be redriven")
    for sub in (listing, redrive):
        sub.add_argument("--topic", metavar="T", help="one topic, e.g. complaints.intake")
        sub.add_argument("--reason", metavar="R", help="only this reason, e.g. invalid_schema")
        sub.add_argument("--since", metavar="T", help=f"only failed at or after T: {TIME_HELP}")
        sub.add_argument("--limit", metavar="N", type=int, help="at most the N newest entries")
    for sub in (listing, show, redrive):
        sub.add_argument("--json", action="store_true", help="print JSON")
    for sub in (case, stats, replay, listing, show, redrive):
        add_target_options(sub)


def add_target_options(parser: argparse.ArgumentParser) -> None:
    """Where the command looks; see cli/target.py for the order flags, env and demo win."""
    group = parser.add_argument_group(
        "where to look",
        "default: AMENDS_MONGODB_DATABASE / AMENDS_TOPIC_PREFIX; without them, the data of "
        "the last `amends run` on the same servers; else database amends, no prefix",
    )
    group.add_argument("--database", metavar="DB", help="MongoDB database, e.g. amends")
    group.add_argument("--topic-prefix", metavar="P", help="topic prefix, e.g. demo. ('' = none)")


def run_operator_command(args: argparse.Namespace) -> int:
    from cli import case, dlq, replay, stats
    from cli.format import run_command
    from cli.target import resolve
    from shared.settings import Settings

    target = resolve(Settings(), database=args.database, topic_prefix=args.topic_prefix)
    if target.notice:
        print(target.notice, file=sys.stderr)
    modules = {"case": case, "stats": stats, "replay": replay, "dlq": dlq}
    return run_command(modules[args.command].run(target.settings, args))


def dispatch(argv: list[str]) -> int:
    if argv[:1] == ["triage-eval"]:
        # The classifier owns its evaluation command and its --help.
        from services.classify import evaluation

        try:
            return int(evaluation.main(argv[1:]) or 0)
        except ValueError as exc:  # a row it cannot read: the message names file and line
            from cli.format import CliError

            raise CliError(str(exc)) from exc
    if argv[:1] == ["triage-train"]:
        from services.classify.training import train

        return int(train.main(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    if args.command == "run":
        from cli import run

        return run.main(args.count, args.rate, args.exit_when_done, args.json, args.timeout)
    if args.command == "infra":
        from cli.infra import infra

        return infra(args.action)
    if args.command == "observe":
        from cli.observe import observe

        return observe(args.action)
    if args.command == "serve":
        from shared.service import run as serve

        module = importlib.import_module(f"services.{args.service}.app")
        serve(module.build_service())
        return 0
    if args.command == "docs":
        from cli import docs as readme_docs

        return readme_docs.main(check=args.check)
    if args.command == "asyncapi":
        from cli.asyncapi import write_documents

        return write_documents(args.out, check=args.check)
    if args.command in {"case", "stats", "replay", "dlq"}:
        return run_operator_command(args)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """The error boundary: whatever goes wrong, one line on stderr and a non-zero exit
    (AMENDS_DEBUG=1 shows the traceback of an unexpected error)."""
    from cli.errors import explain

    try:
        return dispatch(list(sys.argv[1:] if argv is None else argv))
    except (Exception, KeyboardInterrupt) as exc:
        explained = explain(exc)
        if not explained.expected and os.environ.get("AMENDS_DEBUG"):
            raise
        print(f"amends: error: {explained.message}", file=sys.stderr)
        return explained.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
