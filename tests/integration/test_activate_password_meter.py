"""The live meter (password-meter.js), run by Node, gives each password of the table the level
expected, and calls a password acceptable exactly when the server's rule has its shape (the
table and the rule's shape: tests/unit/test_activate_password_meter.py)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.unit.test_activate_password_meter import SCRIPT, TABLE, server_accepts


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_script_gives_the_expected_level_and_the_servers_verdict():
    program = (
        "const meter = require(process.argv[1]);"
        "let input = '';"
        "process.stdin.on('data', d => input += d);"
        "process.stdin.on('end', () => {"
        "  console.log(JSON.stringify(JSON.parse(input).map(meter.passwordLevel)));"
        "});"
    )
    passwords = list(TABLE)
    run = subprocess.run(
        ["node", "-e", program, str(SCRIPT)],
        input=json.dumps(passwords),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    levels = dict(zip(passwords, json.loads(run.stdout), strict=True))
    assert levels == {password: level for password, (_, level) in TABLE.items()}
    for password, level in levels.items():
        assert (level >= 3) is server_accepts(password), password
