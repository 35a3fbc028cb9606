"""GDPR rights on one command each: export, erase, retention purge."""

from __future__ import annotations

from flask.cli import AppGroup

gdpr_cli = AppGroup("gdpr", help="Export or erase one person's data; purge what is past its retention.")
