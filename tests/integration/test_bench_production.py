"""The production-shaped benchmark (`python -m bench production`) at tiny sizes, so that it does
not rot between runs: nginx in front of the launcher's processes, Redis with a replica.

No figure is checked (this machine is shared): only that every phase runs and reports. nginx is
Debian's (`make test` installs it: make tool-deps); py-spy is optional (without it, the profile's
figure says so).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench import hashing, nginx, production
from bench.hotspots import analyse
from tests.servers import required_tool

pytestmark = pytest.mark.timeout(240)


def test_the_local_gateway_config_is_deploy_nginx_conf_on_loopback_ports(tmp_path):
    upstreams = {
        name: f"127.0.0.1:{8100 + i}"
        for i, name in enumerate(("identify", "structure", "activate", "notify"))
    }
    source = nginx.NGINX_CONF.read_text()
    config = nginx.local_config(source, tmp_path, 8099, upstreams)
    assert "listen 127.0.0.1:8099 default_server;" in config
    assert "resolver" not in config and "127.0.0.11" not in config
    assert re.findall(r"set \$upstream ([^;]+);", config) == [
        "127.0.0.1:8100",
        "127.0.0.1:8101",
        "127.0.0.1:8102",
        "127.0.0.1:8103",
        "127.0.0.1:8100",
    ]
    assert f"access_log {tmp_path}/access.log masked;" in config
    assert "/dev/std" not in config
    # What the measurement is about stays the file's own.
    for kept in (
        "worker_processes auto;",
        "map $uri $masked_path",
        "proxy_set_header X-Forwarded-For $remote_addr;",
    ):
        assert kept in config
    with pytest.raises(ValueError, match="upstreams"):
        nginx.local_config(source.replace(":8000;", ":9000;"), tmp_path, 8099, upstreams)


def test_the_hotspots_set_argon2_and_the_bench_itself_apart():
    raw = "\n".join(
        [
            'process 10:"gunicorn --name activate x";post (services/activate/api.py:3);'
            "hash_secret (argon2/low_level.py:102) 6",
            'process 10:"gunicorn --name activate x";post (services/activate/api.py:3);'
            "read_response (redis/connection.py:9) 3",
            'process 11:"python -m services.notify.consumer";run (shared/bus.py:1);'
            "dumps (json/encoder.py:5) 1",
            'process 99:"python -m bench production";one_flow (bench/flows.py:1) 50',
        ]
    )
    found = analyse(raw, exclude_pids={99})
    assert (found.total, found.argon2, found.outside) == (10, 6, 4)
    assert found.by_kind == {"gunicorn activate": 3, "notify consumer": 1}
    assert found.by_package == {"redis": 3, "json": 1}
    assert found.by_function["post (services/activate/api.py)"] == 3


def test_the_production_benchmark_runs_and_reports(tmp_path: Path, capsys):
    required_tool("nginx")
    results = production.run(
        tmp_path,
        hashing.measure(samples=3),
        clients=2,
        seconds=1.5,
        warm_up=0.5,
        profile_seconds=1,
        fence_requests=5,
        fence_rounds=2,
    )
    names = [r.name for r in results]
    assert (
        len(names) == 5 and any("nginx" in n for n in names) and any("REDIS_MIN_REPLICAS" in n for n in names)
    )
    flows, share, scaling, fence, _ = results
    assert flows.invalid is None and flows.value > 0 and flows.baseline > 0
    assert share.verdict in ("PASS", "MISS") and share.baseline > 0
    assert scaling.value > 0 and scaling.baseline > 0
    assert fence.invalid is None and fence.value > 0 and fence.baseline > 0
    lines = "\n".join(line for r in results for line in (r.line(), *r.details))
    for figure in ("server CPU per flow (ms) by process: gunicorn activate", "redis replica", "argon2"):
        assert figure in lines
    assert "one copy" in capsys.readouterr().out
