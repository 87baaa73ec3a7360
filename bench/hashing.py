"""The bound that password hashing puts on registrations, measured with the project's hasher.

A flow hashes twice at step 4 (the password and the secret answer, argon2id with the
parameters of `services/activate/passwords.py`). On `cores` cores no system can finish more
than `cores / (HASHES_PER_FLOW × t_hash)` flows a second: the figure every flow benchmark is
compared with (called the argon2 floor in the brief: the least work a flow costs). `t_hash` is
CPU time, so that a machine busy with other work does not lower the bound (it lowers the
measured rate, which the load average next to it explains).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench.harness import cores, percentile
from services.activate.passwords import hash_secret, make_hasher

HASHES_PER_FLOW = 2


@dataclass(frozen=True)
class HashCost:
    seconds: float  # median CPU time of one hash (the thread's own time, whatever else runs)
    samples: int
    cores: int
    wall_seconds: float = 0.0  # median elapsed time, which a busy machine inflates

    @property
    def flows_per_second(self) -> float:
        """The most flows a second the hashing alone allows on every core."""
        return self.cores / (HASHES_PER_FLOW * self.seconds)

    def describe(self) -> str:
        return (
            f"argon2id {self.seconds * 1000:.1f} ms of CPU per hash (median of {self.samples};"
            f" {self.wall_seconds * 1000:.1f} ms elapsed) × {HASHES_PER_FLOW} hashes/flow on"
            f" {self.cores} cores → {self.flows_per_second:.1f} flows/s"
        )


def measure(samples: int = 30) -> HashCost:
    hasher = make_hasher()
    hash_secret(hasher, "warm-up")
    cpu_times, wall_times = [], []
    for i in range(samples):
        start, cpu_start = time.perf_counter(), time.thread_time()
        hash_secret(hasher, f"Facture-2026-{i}")
        cpu_times.append(time.thread_time() - cpu_start)
        wall_times.append(time.perf_counter() - start)
    return HashCost(percentile(cpu_times, 50), samples, cores(), percentile(wall_times, 50))
