"""Validation of the YAML sources, with errors a coach can act on.

The coach edits `site.yml` and the checklist files by hand, so every mistake is
reported in plain language that names the file and the key, instead of a
Python traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A mistake in one of the YAML files under site_config/."""


def read_yaml(path: Path) -> dict[str, Any]:
    """Parse one YAML file, turning syntax errors into a readable message."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"Het bestand {path} ontbreekt.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (regel {mark.line + 1})" if mark else ""
        raise ConfigError(
            f"{path.name}{where}: de YAML-opmaak klopt niet. Controleer inspringing, "
            "dubbele punten en aanhalingstekens."
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name}: het bestand moet sleutels met waarden bevatten.")
    return data


def require(data: dict[str, Any], key: str, kind: type, where: str) -> Any:
    """Return data[key], or fail naming the missing or mistyped key."""
    if key not in data or data[key] in (None, ""):
        raise ConfigError(f"{where}: '{key}' ontbreekt.")
    value = data[key]
    if kind is float and isinstance(value, int):
        value = float(value)
    if not isinstance(value, kind):
        names = {str: "tekst", int: "een getal", float: "een getal", list: "een lijst",
                 dict: "een groep sleutels", bool: "true of false"}
        raise ConfigError(f"{where}: '{key}' moet {names.get(kind, kind.__name__)} zijn.")
    return value


IMAGE_TYPES = (".jpg", ".jpeg", ".png", ".webp", ".svg")


def optional_image(data: dict[str, Any], key: str, config_dir: Path, where: str) -> tuple[Path, str] | None:
    """An optional picture `key: {file: images/x.jpg, alt: "…"}`: None when left out, else the file
    (which must exist below config_dir) and its description."""
    value = data.get(key)
    if not value:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: '{key}' heeft twee regels nodig: 'file' (de foto in site_config/images/) "
                          "en 'alt' (wat er op de foto staat).")
    file, alt = value.get("file"), value.get("alt")
    if not file or not isinstance(file, str):
        raise ConfigError(f"{where}: bij '{key}' ontbreekt 'file', de naam van de foto in site_config/images/.")
    if not alt or not isinstance(alt, str):
        raise ConfigError(f"{where}: bij '{key}' ontbreekt 'alt': beschrijf kort wat er op de foto staat, "
                          "voor wie de foto niet kan zien.")
    path = (config_dir / file).resolve()
    if not path.is_file():
        raise ConfigError(f"{where}: de foto '{file}' bestaat niet. Zet ze in site_config/images/ en schrijf "
                          f"'images/naam.jpg'.")
    if path.suffix.lower() not in IMAGE_TYPES:
        raise ConfigError(f"{where}: '{file}' is geen foto die de site kan tonen; gebruik JPG, PNG, WebP of SVG.")
    return path, alt


def placeholder_lines(path: Path) -> list[int]:
    """The numbers of the lines of site.yml whose value is still marked '# VOORBEELD' (an example value),
    for the build's reminder."""
    return [number for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
            if "# VOORBEELD" in line and line.split("#", 1)[0].strip()]
