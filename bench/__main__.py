"""`python -m bench [flows] [bus] [emails] [endpoints] [sirene-store] [sign-in] [--quick] [--no-write]`.

Runs the benchmarks named (all by default), prints every figure against the baseline
measured in the same run with its target and PASS/MISS, and writes the results, with the
machine they ran on, into docs/benchmarks.md. Logs and request files stay under var/bench/.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import bus, emails, endpoints, flows, hashing, production, report, sign_in, sirene_store
from bench.harness import ROOT, Result, cpu_ticks, machine, say
from bench.profile import Sampler
from bench.system import own_redis

BENCHMARKS = ("flows", "bus", "emails", "endpoints", "sirene-store", "sign-in", "production")


def sizes(quick: bool) -> dict[str, dict]:
    if quick:
        return {
            "flows": {"clients": 8, "seconds": 10, "warm_up": 3},
            "bus": {"rate": 500, "seconds": 3, "count": 3000},
            "emails": {"count": 60},
            "endpoints": {"seconds": 2},
            "sirene-store": {"establishments": 100_000, "lookups": 5_000, "searches": 50},
            "sign-in": {"clients": 8, "seconds": 10, "warm_up": 3},
            "production": {"clients": 8, "seconds": 3, "warm_up": 1.5, "profile_seconds": 3}
            | {"fence_requests": 20, "fence_rounds": 2},
        }
    return {
        "flows": {"clients": 16, "seconds": 30, "warm_up": 5},
        "bus": {"rate": 500, "seconds": 10, "count": 10000},
        "emails": {"count": 300},
        "endpoints": {"seconds": 5},
        "sirene-store": {"establishments": 2_000_000, "lookups": 50_000, "searches": 300},
        "sign-in": {"clients": 16, "seconds": 30, "warm_up": 5},
        "production": {"clients": 16, "seconds": 30, "warm_up": 5, "profile_seconds": 30}
        | {"fence_requests": 200, "fence_rounds": 4},
    }


def run_one(
    name: str, work: Path, hash_cost: hashing.HashCost, size: dict, profile: bool
) -> tuple[list[Result], str]:
    """Run one benchmark; return its results and the machine line (taken at its end)."""
    work.mkdir(parents=True, exist_ok=True)
    started = cpu_ticks()
    if name == "flows":
        return flows.run(work, hash_cost, profile=profile, **size), machine(since=started)
    if name == "sign-in":
        return sign_in.run(work, hash_cost, profile=profile, **size), machine(since=started)
    if name == "production":  # profiles a stretch of its own in every run
        return production.run(work, hash_cost, **size), machine(since=started)
    sampler = Sampler(os.getpid(), work / f"{name}.spy") if profile else None
    try:
        return _run_with_redis(name, work, hash_cost, size, started)
    finally:
        if sampler:
            sampler.finish()


def _run_with_redis(
    name: str, work: Path, hash_cost: hashing.HashCost, size: dict, started: list[int]
) -> tuple[list[Result], str]:
    with own_redis() as server:
        if name == "bus":
            results = bus.run(server.url, **size)
        elif name == "emails":
            results = emails.run(server.url, work, **size)
        elif name == "sirene-store":
            results = sirene_store.run(server.url, work, **size)
        else:
            results = endpoints.run(server.url, work, hash_cost, **size)
        return results, machine(server.url, since=started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"any of {', '.join(BENCHMARKS)} (all by default)"
    )
    parser.add_argument("--quick", action="store_true", help="short runs (figures are rougher)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample with py-spy (summary under var/bench/); implies --no-write",
    )
    args = parser.parse_args(argv)
    args.no_write = args.no_write or args.profile  # a profiled run is slower: not for the record
    names = args.names or list(BENCHMARKS)
    if unknown := [n for n in names if n not in BENCHMARKS]:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose among {', '.join(BENCHMARKS)}")
    command = "python -m bench " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    work = ROOT / "var" / "bench" / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    say(f"Benchmarks {', '.join(names)} on {machine()}; logs under {work.relative_to(ROOT)}")
    all_results: list[Result] = []
    sizes_now = sizes(args.quick)
    for name in names:
        say(f"\n[{name}]")
        # Right before the benchmark it bounds: the host's other load changes the CPU time of a
        # hash (19 to 32 ms on the same machine on the same day), as it changes everything else.
        hash_cost = hashing.measure()
        say(f"  {hash_cost.describe()}")
        results, where = run_one(name, work / name, hash_cost, sizes_now[name], args.profile)
        for result in results:
            say(f"  {result.line()}")
            for detail in result.details:
                say(f"      {detail}")
        if not args.no_write:
            report.write(args.output, name, report.section(name, command.strip(), where, results))
        all_results.extend(results)
    say("\nSummary")
    for result in all_results:
        say(f"  {result.verdict:7s} {result.name}")
    if not args.no_write:
        say(f"Results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
