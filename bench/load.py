"""The HTTP load generator: wrk (Debian's, installed when missing) or a threaded Python client.

Both replay a file of requests, one per line `METHOD<TAB>PATH<TAB>JSON body`, over keep-alive
connections to 127.0.0.1, in one of two modes:
- `cycle`: loop over the list for the whole duration (read paths, repeatable requests);
- `once`: each request is sent once (a registration is confirmed once, a link used once);
  a connection with nothing left to send idles, and the rate is counted up to the last answer,
  so a list shorter than the run gives a true figure rather than a diluted one.
The rate is answers / (last answer − first request), measured by the client itself.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bench.harness import percentile, say

WRK_SCRIPT = r"""
-- Written by bench/load.py: replay a request file (see its docstring).
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local path, nthreads = args[1], tonumber(args[2])
  cycle = args[3] == "cycle"
  requests = {}
  local i = 0
  for line in io.lines(path) do
    if i % nthreads == id then
      local method, target, body = line:match("^([^\t]*)\t([^\t]*)\t?(.*)$")
      local headers = {}
      if body ~= nil and body ~= "" then
        headers["Content-Type"] = "application/json"
      else
        body = nil
      end
      table.insert(requests, wrk.format(method, target, headers, body))
    end
    i = i + 1
  end
  count = #requests
  reserved, sent, answered, ok = 0, 0, 0, 0
  first_us, last_us = 0, 0
  bad_status, bad_body = 0, ""
end

function delay()
  if cycle or reserved < count then
    reserved = reserved + 1
    return 0
  end
  return 3600000  -- nothing left to send: this connection idles until wrk stops
end

function request()
  sent = sent + 1
  if first_us == 0 then first_us = now_us() end
  return requests[((sent - 1) % count) + 1]
end

function response(status, headers, body)
  answered = answered + 1
  last_us = now_us()
  if status >= 200 and status < 300 then
    ok = ok + 1
  elseif bad_status == 0 then
    bad_status, bad_body = status, string.sub(body or "", 1, 300)
  end
end

function done(summary, latency, stats)
  local first, last, answers, oks, listed = 0, 0, 0, 0, 0
  local bad_status, bad_body = 0, ""
  for _, t in ipairs(threads) do
    local f, l = t:get("first_us"), t:get("last_us")
    if f > 0 and (first == 0 or f < first) then first = f end
    if l > last then last = l end
    answers = answers + t:get("answered")
    oks = oks + t:get("ok")
    listed = listed + t:get("count")
    if bad_status == 0 and t:get("bad_status") ~= 0 then
      bad_status, bad_body = t:get("bad_status"), t:get("bad_body")
    end
  end
  local e = summary.errors
  io.write("BENCH-RESULT ", string.format(
    '{"answers":%d,"ok":%d,"listed":%d,"window_us":%d,"p50_us":%d,"p99_us":%d,' ..
    '"socket_errors":%d,"timeouts":%d,"bad_status":%d}',
    answers, oks, listed, last - first, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write, e.timeout, bad_status), "\n")
  io.write("BENCH-BAD-BODY ", (string.gsub(bad_body, "\n", " ")), "\n")
end
"""


@dataclass
class Load:
    """What one load run measured."""

    tool: str
    answers: int
    ok: int
    listed: int
    seconds: float
    p50_ms: float
    p99_ms: float
    socket_errors: int = 0
    bad_status: int = 0
    bad_body: str = ""
    mode: str = "cycle"

    @property
    def rate(self) -> float:
        return self.answers / self.seconds if self.seconds > 0 else 0.0

    def problem(self) -> str | None:
        """Why this figure cannot be trusted, if it cannot."""
        if self.answers == 0:
            return "no answer"
        if self.ok < self.answers:
            return f"{self.answers - self.ok} of {self.answers} answers not 2xx (first: {self.bad_status})"
        if self.mode == "once" and self.answers >= self.listed:
            return None  # every request answered; idle connections closed by the server do not count
        if self.socket_errors:
            return f"{self.socket_errors} socket errors"
        return None

    @property
    def exhausted(self) -> bool:
        """A `once` list entirely sent: the run was shorter than asked (still a true rate)."""
        return self.mode == "once" and self.answers >= self.listed

    def describe(self) -> str:
        return (
            f"{self.answers} answers in {self.seconds:.1f} s,"
            f" p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms"
        )


def write_requests(path: Path, requests: Iterable[tuple[str, str, dict | None]]) -> int:
    """Write (method, path, JSON body or None) lines; return how many."""
    count = 0
    with open(path, "w", encoding="utf-8") as f:
        for method, target, body in requests:
            text = json.dumps(body, ensure_ascii=False, separators=(",", ":")) if body is not None else ""
            f.write(f"{method}\t{target}\t{text}\n")
            count += 1
    return count


def read_requests(path: Path) -> list[tuple[str, str, bytes | None]]:
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        method, target, body = (line.split("\t", 2) + [""])[:3]
        found.append((method, target, body.encode() if body else None))
    return found


def find_wrk(install: bool = True) -> str | None:
    """wrk's path; when missing, try `apt-get install -y wrk` (Debian) once; None if not to be had."""
    found = shutil.which("wrk")
    if found or not install or not shutil.which("apt-get"):
        return found
    say("  wrk is missing: installing Debian's (apt-get install -y wrk) …")
    sudo = [] if _is_root() else ["sudo", "-n"]
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        try:
            subprocess.run(sudo + command, env=env, check=True, capture_output=True, timeout=300)
        except (subprocess.SubprocessError, OSError) as exc:
            say(f"  could not install wrk ({exc}); using the Python client")
            return None
    return shutil.which("wrk")


def _is_root() -> bool:
    return os.geteuid() == 0


def run_wrk(
    wrk: str,
    base_url: str,
    requests_file: Path,
    seconds: float,
    connections: int,
    mode: str,
    threads: int = 1,
) -> Load:
    script = requests_file.with_suffix(".lua")
    script.write_text(WRK_SCRIPT)
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        base_url,
        "--",
        str(requests_file),
        str(threads),
        mode,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 90)
    return parse_wrk(done.stdout + done.stderr, mode)


def parse_wrk(output: str, mode: str = "cycle") -> Load:
    match = re.search(r"^BENCH-RESULT (\{.*\})$", output, re.MULTILINE)
    if not match:
        raise RuntimeError(f"wrk gave no result:\n{output[-2000:]}")
    data = json.loads(match.group(1))
    body = re.search(r"^BENCH-BAD-BODY (.*)$", output, re.MULTILINE)
    return Load(
        tool="wrk",
        answers=data["answers"],
        ok=data["ok"],
        listed=data["listed"],
        seconds=data["window_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        socket_errors=data["socket_errors"] + data["timeouts"],
        bad_status=data["bad_status"],
        bad_body=body.group(1).strip() if body else "",
        mode=mode,
    )


def run_python(base_url: str, requests_file: Path, seconds: float, connections: int, mode: str) -> Load:
    """The same replay with one thread and one keep-alive connection per `connections`."""
    items = read_requests(requests_file)
    host, port = re.match(r"^http://([^:/]+):(\d+)", base_url).groups()
    lock = threading.Lock()
    state = {
        "next": 0,
        "answers": 0,
        "ok": 0,
        "first": 0.0,
        "last": 0.0,
        "bad": 0,
        "bad_body": "",
        "errors": 0,
    }
    latencies: list[float] = []
    stop_at = time.monotonic() + seconds

    def take():
        with lock:
            n = state["next"]
            if mode != "cycle" and n >= len(items):
                return None
            state["next"] = n + 1
            if not state["first"]:
                state["first"] = time.monotonic()
            return items[n % len(items)]

    def client() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        while time.monotonic() < stop_at and (item := take()) is not None:
            method, target, body = item
            headers = {"Content-Type": "application/json"} if body else {}
            start = time.monotonic()
            try:
                conn.request(method, target, body=body, headers=headers)
                answer = conn.getresponse()
                text = answer.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                with lock:
                    state["errors"] += 1
                continue
            end = time.monotonic()
            with lock:
                latencies.append(end - start)
                state["answers"] += 1
                state["last"] = end
                if 200 <= answer.status < 300:
                    state["ok"] += 1
                elif not state["bad"]:
                    state["bad"], state["bad_body"] = answer.status, text[:300].decode(errors="replace")
        conn.close()

    workers = [threading.Thread(target=client, daemon=True) for _ in range(connections)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(seconds + 60)
    return Load(
        tool="python",
        answers=state["answers"],
        ok=state["ok"],
        listed=len(items),
        seconds=max(0.0, state["last"] - state["first"]),
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        socket_errors=state["errors"],
        bad_status=state["bad"],
        bad_body=state["bad_body"],
        mode=mode,
    )


class LoadGenerator:
    """wrk when it can be had, else the Python client; says which in every figure."""

    def __init__(self, connections: int, prefer_wrk: bool = True) -> None:
        self.connections = connections
        self.wrk = find_wrk() if prefer_wrk else None

    @property
    def name(self) -> str:
        if self.wrk:
            return f"wrk -t1 -c{self.connections}"
        return f"Python client, {self.connections} threads"

    def run(self, base_url: str, requests_file: Path, seconds: float, mode: str = "cycle") -> Load:
        if self.wrk:
            return run_wrk(self.wrk, base_url, requests_file, seconds, self.connections, mode)
        return run_python(base_url, requests_file, seconds, self.connections, mode)
