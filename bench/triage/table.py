"""Rewrite the measured-figures table in services/classify/README.md from triage.json.

    python -m bench.triage.table [--check]

The table sits between the ``<!-- triage-table -->`` and ``<!-- /triage-table -->``
markers; ``make triage`` runs this after writing bench/results/triage.json, so the
README never shows a figure that was typed by hand.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from services.classify.training.card import cue_table, score_table
from shared.settings import REPO_ROOT

README = REPO_ROOT / "services" / "classify" / "README.md"
TRIAGE_JSON = REPO_ROOT / "bench" / "results" / "triage.json"
START, END = "<!-- triage-table -->", "<!-- /triage-table -->"


def render(result: dict[str, Any]) -> str:
    lodo: dict[str, list[str]] = {e["language"]: [] for e in result["leave_one_domain_out"]}
    for e in result["leave_one_domain_out"]:
        lodo[e["language"]].append(
            f"{e['domain']} {e['scores']['macro_f1']:.3f} (shipped {e['with_domain_macro_f1']:.3f})"
        )
    lines = [
        f"Model `{result['model_version']}`, measured {result['measured_at']} by `make triage` "
        f"(bench/results/triage.json). Text part: **{result['texts_per_second']:,} texts per "
        f"CPU-second** (target ≥ 5,000; the lexicons alone: "
        f"{result['speed_baseline']['texts_per_second']:,}/s in the same run); cascade share "
        f"{result.get('cascade_share', 0.0)}.",
        "",
        "Upset on the customer-text test splits, per language (leave-one-domain-out: "
        "macro-F1 on a domain's test rows when the model was trained without that "
        "language's rows of that domain, and the shipped model's on the same rows):",
        "",
        *score_table(
            result["in_domain_by_language"],
            extra=("leave-one-domain-out", {k: ", ".join(v) for k, v in lodo.items()}),
        ),
        "",
        "Per test set (upset; the XED subtitle sets and IndoNLU EmoT are general emotion "
        "text, not customer text):",
        "",
        *score_table(result["by_dataset"], first="set"),
    ]
    if result.get("cues"):
        lines += [
            "",
            "Abuse and threat cues (lexicons, no model) on labelled offensive-language sets:",
            "",
            *cue_table(result["cues"]),
        ]
    missed = [t for t in result.get("targets", []) if not t["holds"]]
    lines += [
        "",
        f"Targets: {len(result.get('targets', [])) - len(missed)} of "
        f"{len(result.get('targets', []))} hold.",
    ]
    if missed:
        lines.append(
            "Missed: " + "; ".join(f"{t['target']} ({t['measured']})" for t in missed) + "."
        )
    return "\n".join(lines)


def update(readme: Path = README, triage_json: Path = TRIAGE_JSON, check: bool = False) -> bool:
    """Rewrite the marked section; with ``check``, only say whether it is current."""
    text = readme.read_text(encoding="utf-8")
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    if not rest:
        raise SystemExit(f"{readme}: no {START} marker")
    result = json.loads(triage_json.read_text(encoding="utf-8"))
    new = f"{head}{START}\n{render(result)}\n{END}{tail}"
    if check:
        return new == text
    readme.write_text(new, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--check", action="store_true", help="fail when the table is stale")
    args = parser.parse_args(argv)
    return 0 if update(check=args.check) else 1


if __name__ == "__main__":
    raise SystemExit(main())
