"""The one-origin WSGI app (`make run`'s) as a werkzeug test client, without a server."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from werkzeug.test import Client

from leadform.wsgi import one_origin


def site_client(app: Flask, site_dir: Path, https: bool = False) -> Client:
    return Client(one_origin(app, site_dir, https=https))
