"""Playwright on Debian's Chromium, axe-core checks, and screenshots for people to look at."""

from __future__ import annotations

import json
import re
from pathlib import Path

from playwright.sync_api import Page

HERE = Path(__file__).resolve().parent
AXE_SCRIPT = HERE / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


def axe_violations(page: Page) -> list[dict]:
    """Serious and critical axe-core violations of the page as it is now."""
    # Evaluated through the DevTools protocol, so the pages' strict CSP stays on during the tests.
    page.evaluate(AXE_SCRIPT.read_text())
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "targets": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def assert_accessible(page: Page) -> None:
    violations = axe_violations(page)
    assert not violations, f"{page.url}: {json.dumps(violations, ensure_ascii=False, indent=1)}"


def shoot(page: Page, artifacts: Path, name: str) -> None:
    artifacts.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def activation_link(messages, address: str) -> str:
    mine = [m for m in messages if m["To"] == address]
    assert mine, f"no email to {address}"
    text = mine[-1].get_body(("plain",)).get_content()
    (link,) = set(re.findall(r"https?://\S+/activate/activations/[A-Za-z0-9_\-]+", text))
    return link
