#!/usr/bin/env python3
"""`make loadtest`'s summary: the two k6 scripts' results (capacity.json, journey.json,
written by their handleSummary) as loadtest/RESULTS.md with the machine's description,
and on stdout. Exits 1 when the sidecar held less than --min-rate or the journey broke a
threshold, so that `make loadtest` fails then."""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys


def command(*argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine(k6_version):
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    redis = command("redis-server", "--version").split(" sha=")[0]
    postgres = command("psql", "--version")
    return [
        f"- CPU: {model}, {os.cpu_count()} cores; {mem_kib / 1024 / 1024:.0f} GiB memory; Linux {platform.release()}",
        f"- {redis}; {postgres} (server on 127.0.0.1); {k6_version}",
        "- k6, Redis, PostgreSQL, the sandbox gateway, the sidecar and the shop all share these cores:"
        " the generator's own CPU is part of every latency below.",
    ]


def ms(value):
    return "–" if value is None else f"{value:.2f}"


def capacity_section(c):
    out = ["## The sidecar's capacity (`loadtest/capacity.js`)", ""]
    broke = f"; it broke at {c['broke_at']}/s" if c["broke_at"] else "; no step broke (the capacity is at least this)"
    out.append(
        f"**Highest rate held: {c['highest_rate_held']} decisions/s** (p99 ≤ {c['p99_budget_ms']:g} ms, errors < 0.1 %,"
        f" no dropped arrivals; {c['step_seconds']} s a step){broke}."
    )
    if c.get("ceiling"):
        k = c["ceiling"]
        out.append("")
        out.append(
            f"Beside it, k6's own ceiling in the same run: `GET /healthz` at {k['rate']}/s, p50 {ms(k['p50_ms'])} ms,"
            f" p95 {ms(k['p95_ms'])} ms, p99 {ms(k['p99_ms'])} ms."
        )
    out += ["", "| offered rate | held | requests | p50 ms | p95 ms | p99 ms | max ms | errors | dropped |",
            "|---:|:---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in c["steps"]:
        if not s["ran"]:
            continue
        out.append(
            f"| {s['rate']}/s | {'yes' if s['held'] else '**no**'} | {s['requests']} | {ms(s['p50_ms'])} | {ms(s['p95_ms'])}"
            f" | {ms(s['p99_ms'])} | {ms(s['max_ms'])} | {s['errors']} | {s['dropped']} |"
        )
    d = c["decisions"]
    total = max(1, d["allow"] + d["challenge"] + d["block"])
    stopped = c["attack_stopped_rate"]
    out += [
        "",
        f"Decision mix: allow {d['allow']} ({100 * d['allow'] / total:.1f} %), challenge {d['challenge']}"
        f" ({100 * d['challenge'] / total:.1f} %), block {d['block']} ({100 * d['block'] / total:.1f} %);"
        f" degraded {d['degraded']}. Card-testing bursts ({100 * c['attack_share']:g} % of each step for 4 s, one"
        f" device, a new card each time): {'–' if stopped is None else f'{100 * stopped:.1f} %'} challenged or blocked.",
        "",
        "Latency and rate over time: [`results/capacity.html`](results/capacity.html) (k6's report).",
        "",
    ]
    return out


def journey_section(j, logged):
    out = ["## Shopper journeys through the shop (`loadtest/journey.js`)", ""]
    o = j["orders"]
    out.append(
        f"{j['journeys']} journeys in {j['duration_s']:.0f} s: {j['http_reqs']} requests ({j['http_reqs_per_s']:.1f}/s),"
        f" {j['errors']} failed, checks {100 * (j['checks_rate'] or 0):.2f} % passed; thresholds"
        f" {'kept' if j['thresholds_ok'] else '**broken**'}."
    )
    out += [
        "",
        f"Orders: {o['paid']} paid at once, {o['challenged']} challenged ({o['verified']} verified with the mailbox's"
        f" code, then paid), {o['in_review']} held for review, {o['rejected']} rejected. Decisions in the log: {logged}.",
        "",
        "| request | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, t in sorted(j["requests"].items()):
        out.append(f"| `{name}` | {ms(t['p50_ms'])} | {ms(t['p95_ms'])} | {ms(t['p99_ms'])} | {ms(t['max_ms'])} |")
    if j["journey"]:
        t = j["journey"]
        out.append(f"| whole journey | {ms(t['p50_ms'])} | {ms(t['p95_ms'])} | {ms(t['p99_ms'])} | {ms(t['max_ms'])} |")
    out += ["", "Latency and rate over time: [`results/journey.html`](results/journey.html) (k6's report).", ""]
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--min-rate", type=int, default=250)
    parser.add_argument("--logged-decisions", default="?")
    parser.add_argument("--k6", default="k6")
    parser.add_argument("--scripts", default="capacity journey", help="the scripts this run ran")
    args = parser.parse_args()

    def load(name):
        path = os.path.join(args.results, f"{name}.json")
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError) as e:
            print(f"loadtest: no result in {path}: {e}", file=sys.stderr)
            return None

    ran = args.scripts.split()
    capacity = load("capacity") if "capacity" in ran else None
    journey = load("journey") if "journey" in ran else None
    rev = command("git", "rev-parse", "--short", "HEAD")
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["# Load test results", "",
             f"Written by `make loadtest` ({when}, commit `{rev}`). The machine:", ""]
    lines += machine(args.k6) + [""]
    problems = []
    if capacity:
        lines += capacity_section(capacity)
        if capacity["highest_rate_held"] < args.min_rate:
            problems.append(f"the sidecar held {capacity['highest_rate_held']}/s, under MIN_RATE {args.min_rate}/s")
    elif "capacity" in ran:
        problems.append("no capacity result")
    if journey:
        lines += journey_section(journey, args.logged_decisions)
        if not journey["thresholds_ok"]:
            problems.append("the journey broke a threshold")
    elif "journey" in ran:
        problems.append("no journey result")
    with open(args.out, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    for p in problems:
        print(f"loadtest: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
