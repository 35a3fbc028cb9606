"""A stand-in for a built site's .published.json (site_config/published.py), for apps without a built site."""

from __future__ import annotations

import json
from pathlib import Path

STUB_BANNER_HASH = "0123456789abcdef"   # consent.example_payload() outside an app
STUB_PATHS = ("/", "/blog/", "/contact/", "/diensten/teamcoaching/", "/checklists/teams/")


def stub_site(folder: Path) -> Path:
    """A folder holding only .published.json: the paths above and the example banner hash."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".published.json").write_text(json.dumps({"paths": list(STUB_PATHS),
                                                        "banner_hashes": [STUB_BANNER_HASH]}))
    return folder
