"""Run every benchmark (bench/*_bench.py) and write bench/README.md from bench/results/*.json.

Each benchmark runs as its own process and writes bench/results/<name>.json; this script
then renders one section per result file, with the machine it ran on and each target
from the issues beside the measured figure, marked met or missed. A result may carry its
own "targets" list ({"what", "target", "measured", "met"}); TARGETS below covers the
benchmarks that do not.

    python bench/run_all.py [--quick] [--only ingest,inbox] [--report-only]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import BENCH, RESULTS, ROOT, machine, status

README = BENCH / "README.md"
# Benchmarks whose results do not list their own targets: (what, JSON path, comparison, target, unit).
TARGETS: dict[str, list[tuple[str, str, str, float, str]]] = {
    "widget": [
        ("widget websockets held by one API process", "concurrent_sockets.answered_ping", ">=", 5000, ""),
    ],
    "routing": [
        ("routing decision p99 (agent chosen), least loaded", "routing_decision.least_loaded.p99_ms", "<=", 5, " ms"),
        ("routing decision p99 (agent chosen), round robin", "routing_decision.round_robin.p99_ms", "<=", 5, " ms"),
    ],
}
ORDER = ["ingest", "saturation", "inbox", "search"]


def scripts() -> dict[str, Path]:
    return {path.name.removesuffix("_bench.py"): path for path in sorted(BENCH.glob("*_bench.py"))}


def run(name: str, script: Path, quick: bool) -> tuple[bool, float]:
    args = [sys.executable, str(script)]
    if quick and '"--quick"' in script.read_text():
        args.append("--quick")
    status(f"== {name}: {' '.join(args[1:])}")
    started = time.monotonic()
    done = subprocess.run(args, cwd=ROOT, check=False)
    seconds = round(time.monotonic() - started, 1)
    status(f"== {name}: {'done' if done.returncode == 0 else f'FAILED ({done.returncode})'} in {seconds} s")
    return done.returncode == 0, seconds


def _get(data: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def targets_of(name: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    if isinstance(result.get("targets"), list):
        return list(result["targets"])
    rows = []
    for what, path, comparison, target, unit in TARGETS.get(name, []):
        value = _get(result, path)
        met = None
        if isinstance(value, int | float):
            met = value >= target if comparison == ">=" else value <= target
        rows.append(
            {
                "what": what,
                "target": f"{comparison} {target:g}{unit}",
                "measured": "not measured" if value is None else f"{value}{unit}",
                "met": met,
            }
        )
    return rows


def table(columns: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        if value is None:
            return "–"
        if isinstance(value, bool):
            return "yes" if value else "no"
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(met: Any) -> str:
    return "**met**" if met is True else "**missed**" if met is False else "–"


def _ingest(result: dict[str, Any]) -> str:
    parts = []
    for db in result.get("databases", []):
        rows = [
            [
                step["offered_per_s"],
                step["accepted_per_s"],
                step["post_to_event"]["p50_ms"],
                step["post_to_event"]["p99_ms"],
                step["post_to_response"]["p99_ms"],
                sum(step["errors"].values()) if step["errors"] else 0,
                step["events_missing"],
                step.get("commits_per_message"),
                step.get("hilo_cpu_ms_per_message"),
            ]
            for step in db["steps"]
        ]
        statements = db.get("sql_statements_per_message", {})
        cpu = statements.get("cpu_ms_per_message", {})
        kinds = [
            ("new_contact", "new contact"),
            ("returning_contact", "follow-up"),
            ("returning_with_email", "follow-up naming an e-mail"),
            *((key, "follow-ups in batches of 32 (as under load)") for key in statements if "batches" in key),
        ]
        per_kind = "; ".join(
            f"{title}: {statements[key]} statements, {cpu.get(key, '–')} ms CPU"
            for key, title in kinds
            if key in statements
        )
        warmup = db.get("warmup")
        warmed = (
            f" Warm-up (not in the table): {warmup['accepted']} senders' first messages at "
            f"{warmup['offered_per_s']}/s; each step then sends 90% follow-ups from them and 10% first "
            "messages from new senders."
            if warmup
            else ""
        )
        skipped = db.get("skipped_rates")
        saturation = f" Saturated: rates {', '.join(map(str, skipped))}/s not run." if skipped else ""
        if per_kind:
            head = f"**{db['database']}** — per message, in-process: {per_kind}."
        else:
            head = f"**{db['database']}** — {db.get('deployment', 'the same database')}."
        parts.append(
            f"{head} API process resident memory after the "
            f"run: {db.get('api_rss_mb_after_run')} MB.{warmed}{saturation}\n\n"
            + table(
                [
                    "offered msg/s",
                    "accepted msg/s",
                    "POST→event p50 ms",
                    "POST→event p99 ms",
                    "POST→2xx p99 ms",
                    "errors",
                    "events missing",
                    "commits/msg",
                    "Hilo CPU ms/msg",
                ],
                rows,
            )
        )
        lag = db.get("reaction_lag")
        if lag:
            parts.append(
                f"Reaction lag on {db['database']}: with routing set up (a team, a rule that puts every new "
                "conversation in it), from a new conversation's first message reaching the agent's websocket to "
                "its assignment by the engine reaching it: the time the engine, a durable consumer of the "
                "committed events, takes to react.\n\n"
                + table(
                    [
                        "offered msg/s",
                        "accepted msg/s",
                        "new conversations",
                        "not assigned",
                        "lag p50 ms",
                        "lag p99 ms",
                    ],
                    [
                        [
                            step["offered_per_s"],
                            step["accepted_per_s"],
                            step["new_conversations"],
                            step["not_assigned"],
                            step["commit_to_assignment"]["p50_ms"],
                            step["commit_to_assignment"]["p99_ms"],
                        ]
                        for step in lag
                    ],
                )
            )
    return "\n\n".join(parts)


def _cases(result: dict[str, Any], extra: list[tuple[str, Callable[[dict[str, Any]], Any]]]) -> str:
    rows = []
    for name, case in result.get("cases", {}).items():
        latency = case["latency"]
        statements = case.get("sql_statements", {})
        rows.append(
            [
                name,
                *(get(case) for _title, get in extra),
                latency["count"],
                latency["p50_ms"],
                latency["p99_ms"],
                latency["max_ms"],
                statements.get("max"),
            ]
        )
    columns = ["case", *(title for title, _get in extra), "requests", "p50 ms", "p99 ms", "max ms", "SQL statements"]
    data_set = result.get("data_set", {})
    head = (
        f"Data set `{data_set.get('database')}`: {data_set.get('conversations', '–')} conversations, "
        f"{data_set.get('messages')} messages.\n\n"
    )
    return head + table(columns, rows)


def _flatten(prefix: str, value: Any, rows: list[list[Any]], tables: list[str]) -> None:
    """Scalars become `path | value` rows; a list of records becomes a table of its own."""
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, rows, tables)
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        columns = list(dict.fromkeys(k for record in value for k in record))
        cells = [
            [json.dumps(r.get(k)) if isinstance(r.get(k), dict | list) else r.get(k) for k in columns] for r in value
        ]
        tables.append(f"`{prefix}`:\n\n" + table(columns, cells))
    elif isinstance(value, list) and len(value) > 6:
        rows.append([prefix, f"({len(value)} entries, see the JSON file)"])
    else:
        rows.append([prefix, value])


def _generic(result: dict[str, Any]) -> str:
    rows: list[list[Any]] = []
    tables: list[str] = []
    skip = {"benchmark", "date", "machine", "targets"}
    _flatten("", {k: v for k, v in result.items() if k not in skip}, rows, tables)
    return "\n\n".join([table(["figure", "value"], rows), *tables])


def _channels(result: dict[str, Any]) -> str:
    parse = result.get("parse_and_verify", {})
    ingest = result.get("ingest", {})
    out = [
        f"Parse and verify (signature check and normalisation), best of {parse.get('repeats')} repeats of "
        f"{parse.get('timeit_number')} calls per captured fixture:",
        "",
        table(
            ["adapter", "fixture", "bytes", "µs per webhook"],
            [[f["adapter"], f["fixture"], f["bytes"], f["us_per_webhook"]] for f in parse.get("per_fixture", [])],
        ),
        "",
        f"Ingest over HTTP through each adapter (`hilo serve`): a fixed {ingest.get('moderate_rate_per_s')}/s for "
        f"{ingest.get('moderate_seconds')} s (open loop; latency from the scheduled send to the answer, given after "
        f"the commit), then {ingest.get('saturation_clients')} clients posting back to back (the rate the server "
        "sustains):",
        "",
    ]
    rows = []
    for entry in ingest.get("databases", []):
        for adapter, runs in entry.get("adapters", {}).items():
            for run, data in runs.items():
                latency = data.get("post_to_response", {})
                rows.append(
                    [
                        entry.get("database"),
                        adapter,
                        run,
                        data.get("offered_per_s", "–"),
                        data.get("accepted_per_s"),
                        latency.get("p50_ms"),
                        latency.get("p99_ms"),
                        sum((data.get("errors") or {}).values()),
                    ]
                )
    out.append(table(["database", "adapter", "run", "offered/s", "accepted/s", "p50 ms", "p99 ms", "errors"], rows))
    reference = ingest.get("api_channel_reference") or {}
    if reference:
        cells = [
            [db, reference[db].get("best_accepted_per_s"), reference[db].get("best_step_p99_ms")]
            for db in ("sqlite", "postgresql")
            if isinstance(reference.get(db), dict)
        ]
        out += [
            "",
            f"The core ingest benchmark's API-channel figures ({reference.get('source')}, {reference.get('date')}): "
            "rising open-loop rates, latency to the agent's websocket.",
            "",
            table(["database", "best accepted/s", "p99 ms at that step"], cells),
        ]
    return "\n".join(out)


def _saturation(result: dict[str, Any]) -> str:
    summary = table(
        ["deployment", "what runs", "msg/s (median)", "vs 1 process", "p99 ms", "Hilo CPU ms/msg", "msgs/commit",
         "consumers caught up after (s)", "stored exactly once"],
        [
            [row["deployment"], row["text"], row["messages_per_s"], row.get("vs_one_process"), row["p99_ms"],
             row["cpu_ms_per_message"], row["messages_per_commit"], row.get("consumers_caught_up_after_s", "–"),
             row["exactly_once"]]
            for row in result.get("summary", [])
        ],
    )  # fmt: skip
    rounds = table(
        ["round", "deployment", "msg/s", "p50 ms", "p99 ms", "Hilo CPU ms/msg", "msgs/commit", "non-2xx",
         "stored", "exactly once"],
        [
            [r["round"], r["deployment"], r["messages_per_s"], r["p50_ms"], r["p99_ms"], r["cpu_ms_per_message"],
             r["messages_per_commit"], r["non_2xx"], r["stored_rows"], r["exactly_once"]]
            for r in result.get("rounds", [])
        ],
    )  # fmt: skip
    return (
        f"wrk, closed loop, {result.get('connections')} connections, {result.get('duration_s')} s per round, "
        "signed API-channel webhooks: 90% follow-ups from 3,000 senders with an open thread, 10% new senders. "
        "Fresh database and server per round; the deployments alternate round by round. CPU is every Hilo "
        "process's (/proc) and commits are all of the database's (ingest and the consumers' passes), both "
        "counted until the durable consumers have handled every event of the load. "
        "Medians of the rounds:\n\n" + summary + "\n\nEvery round:\n\n" + rounds
    )


RENDER: dict[str, Callable[[dict[str, Any]], str]] = {
    "ingest": _ingest,
    "saturation": _saturation,
    "channels": _channels,
    "inbox": lambda r: _cases(r, [("who", lambda c: c.get("who")), ("what", lambda c: c.get("what"))]),
    "search": lambda r: _cases(
        r,
        [
            ("what", lambda c: c.get("what", "")),
            ("query", lambda c: f"`{c.get('query')}`"),
            ("matching messages", lambda c: c.get("matching_messages")),
            ("matching conversations", lambda c: c.get("matching_conversations", "")),
        ],
    ),
}


def report(failed: list[str]) -> str:
    results = {path.stem: json.loads(path.read_text()) for path in sorted(RESULTS.glob("*.json"))}
    names = [n for n in ORDER if n in results] + sorted(n for n in results if n not in ORDER)
    host = machine()
    out = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`bench/run_all.py`), which runs every `bench/*_bench.py` as its own process "
        "and renders `bench/results/*.json`. One benchmark: `.venv/bin/python bench/run_all.py --only ingest`; a "
        "short smoke run: `--quick` (small data sets and short runs: its figures are not comparable to the "
        "targets); this page alone: `--report-only`.",
        "",
        "## Machine",
        "",
        table(
            ["nproc", "CPU", "memory", "Python", "PostgreSQL", "SQLite", "kernel"],
            [
                [
                    host["nproc"],
                    host["cpu"],
                    f"{host['memory_gb']} GB",
                    host["python"],
                    host["postgresql"],
                    host["sqlite"],
                    host["kernel"],
                ]
            ],
        ),
        "",
        "The machine is shared: other processes' load during a run shows up in the figures.",
        "",
        "## Targets",
        "",
    ]
    summary = [
        [
            name,
            row["what"],
            row["target"],
            row["measured"],
            "quick run" if results[name].get("quick") else verdict(row.get("met")),
        ]
        for name in names
        for row in targets_of(name, results[name])
    ]
    out.append(table(["benchmark", "what", "target", "measured", "result"], summary) if summary else "(none)")
    if failed:
        out += ["", f"Failed in the last run (older results shown, if any): {', '.join(failed)}."]
    for name in names:
        result = results[name]
        quick = " — quick run, not comparable to the targets" if result.get("quick") else ""
        load = (result.get("machine") or {}).get("load_average")
        context = f" Load average when written: {', '.join(map(str, load))}." if load else ""
        out += ["", f"## {name.capitalize()}", "", f"Measured {result.get('date')}{quick}.{context}", ""]
        render = RENDER.get(name, _generic)
        out.append(render(result))
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="small data sets and short runs (a smoke test)")
    parser.add_argument("--only", default="", help="comma-separated benchmark names, e.g. ingest,inbox")
    parser.add_argument("--report-only", action="store_true", help="only rewrite bench/README.md")
    args = parser.parse_args()
    available = scripts()
    chosen = [n.strip() for n in args.only.split(",") if n.strip()] or list(available)
    unknown = [n for n in chosen if n not in available]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; there are: {', '.join(available)}")
    failed = []
    if not args.report_only:
        for name in chosen:
            ok, _seconds = run(name, available[name], args.quick)
            if not ok:
                failed.append(name)
    README.write_text(report(failed))
    status(f"wrote {README.relative_to(ROOT)}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
