"""The gateway of `docker compose up` (deploy/nginx.conf, Debian's nginx) run on this machine.

`local_config` derives a runnable configuration from deploy/nginx.conf and changes only what
ties it to Docker: the listen address, the upstreams (`set $upstream identify:8000;`, or
`server identify:8000;` in an upstream block: service names → 127.0.0.1 ports), the resolver
lines (Docker's DNS; nothing is left to resolve), and the paths nginx writes to (logs, pid,
temp files, in a directory of the run's own). Everything else (maps, masked access log, headers,
timeouts, worker_processes) is the file's, so that what is measured is that file's behaviour. A
change of the file's shape that the substitutions no longer match is an error, never a silent
run of something else.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from bench.harness import ROOT, say

NGINX_CONF = ROOT / "deploy" / "nginx.conf"
_UPSTREAM = re.compile(r"\b(set \$upstream|server) (\w+):8000;")
_RESOLVER = re.compile(r"^\s*resolver(_timeout)?\s[^;]*;\n", re.MULTILINE)
_TEMP_KINDS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def find_nginx() -> str | None:
    """nginx's path (Debian keeps it in /usr/sbin, not on every user's PATH), or None."""
    return shutil.which("nginx") or shutil.which("nginx", path=f"/usr/sbin{os.pathsep}/sbin")


def install_nginx() -> str | None:
    """Debian's nginx, installed with apt-get as `make tool-deps` does: no server started (a
    policy-rc.d refusing every start during the install, unless the machine has one), the service
    left disabled at boot. Its path, or None when it cannot be installed here."""
    if found := find_nginx():
        return found
    if not shutil.which("apt-get"):
        return None
    say("  nginx is missing: installing Debian's (apt-get install nginx, no server started) …")
    script = (
        "policy=/usr/sbin/policy-rc.d; placed=;"
        ' if [ ! -e $policy ]; then printf "#!/bin/sh\\nexit 101\\n" >$policy && chmod 755 $policy'
        " && placed=1; fi;"
        " apt-get update -qq && apt-get install -y -qq --no-install-recommends nginx; status=$?;"
        ' [ -z "$placed" ] || rm -f $policy;'
        " { systemctl disable --quiet nginx || update-rc.d nginx disable; } >/dev/null 2>&1;"
        " exit $status"
    )
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    try:
        subprocess.run([*sudo, "sh", "-c", script], env=env, check=True, capture_output=True, timeout=600)
    except (subprocess.SubprocessError, OSError) as exc:
        say(f"  could not install nginx: {exc}")
        return None
    return find_nginx()


def _substitute(pattern: re.Pattern | str, replacement, text: str, what: str) -> str:
    if isinstance(pattern, str):
        if pattern not in text:
            raise ValueError(f"deploy/nginx.conf no longer has {what} ({pattern!r})")
        return text.replace(pattern, replacement)
    new, count = pattern.subn(replacement, text)
    if count == 0:
        raise ValueError(f"deploy/nginx.conf no longer has {what} ({pattern.pattern!r})")
    return new


def local_config(source: str, directory: Path, port: int, upstreams: dict[str, str]) -> str:
    """deploy/nginx.conf's text for a run on 127.0.0.1:`port`, the services at `upstreams`
    (`{"identify": "127.0.0.1:8101", …}`), logs, pid and temp files under `directory`."""

    def upstream(found: re.Match) -> str:
        directive, service = found.groups()
        if service not in upstreams:
            raise ValueError(f"deploy/nginx.conf forwards to {service!r}, which this run does not start")
        return f"{directive} {upstreams[service]};"

    text = _substitute(
        "listen 80 default_server;", f"listen 127.0.0.1:{port} default_server;", source, "listen"
    )
    text = _substitute(_UPSTREAM, upstream, text, "the upstreams")
    text = _substitute(_RESOLVER, "", text, "Docker's resolver")
    text = _substitute("access_log /dev/stdout", f"access_log {directory}/access.log", text, "the access log")
    text = _substitute("error_log /dev/stderr", f"error_log {directory}/error.log", text, "the error log")
    temp_paths = "".join(f"    {kind}_temp_path {directory}/{kind};\n" for kind in _TEMP_KINDS)
    text = _substitute("http {\n", "http {\n" + temp_paths, text, "the http block")
    return f"pid {directory}/nginx.pid;\ndaemon off;\n{text}"


def prepare(directory: Path, port: int, upstreams: dict[str, str], source: Path = NGINX_CONF) -> list[str]:
    """Write the local configuration of `source` (deploy/nginx.conf, or a candidate change of it)
    under `directory`; the command line that runs it in the foreground (`-p`, `-c`, `-e`: nothing
    outside `directory` is written)."""
    nginx = install_nginx()
    if nginx is None:
        raise RuntimeError("nginx is not installed and could not be (make tool-deps installs it)")
    directory.mkdir(parents=True, exist_ok=True)
    if (
        os.geteuid() == 0
    ):  # the workers then run as nginx's unprivileged user: let them reach their temp paths
        directory.chmod(0o755)
    config = directory / "nginx.conf"
    config.write_text(local_config(source.read_text(), directory, port, upstreams))
    return [nginx, "-p", str(directory), "-c", str(config), "-e", str(directory / "error.log")]
