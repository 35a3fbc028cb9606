"""Other facts for a build or an app: a copy of site_config's YAML and images that SITE_CONFIG_DIR names."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def config_copy(tmp_path: Path, edit: Callable[[str], str]) -> Path:
    """site_config's YAML and images in tmp_path, with site.yml changed by `edit(text) -> text`."""
    config = tmp_path / "site_config"
    shutil.copytree(ROOT / "site_config", config,
                    ignore=shutil.ignore_patterns("overrides", "fonts", "__pycache__", "*.py"))
    yml = config / "site.yml"
    yml.write_text(edit(yml.read_text(encoding="utf-8")), encoding="utf-8")
    return config
