"""Logging set-up for every process: one line per record, on stderr."""

from __future__ import annotations

import logging
import os


def configure(process: str) -> None:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format=f"%(asctime)s %(levelname)s {process} %(name)s: %(message)s",
    )
