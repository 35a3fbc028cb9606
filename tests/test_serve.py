"""`make run`'s server: one origin, compressed text, long-lived fingerprinted assets, nothing outside site/."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from support.servers import site_client
from werkzeug.test import Client


@pytest.fixture
def static_client(app, site_dir: Path) -> Client:
    return site_client(app, site_dir)


def test_pages_are_gzipped_for_browsers_that_ask(static_client: Client) -> None:
    client = static_client
    plain = client.get("/")
    packed = client.get("/", headers={"Accept-Encoding": "gzip, br"})
    assert plain.status_code == packed.status_code == 200
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.data) == plain.data
    assert len(packed.data) < len(plain.data) / 3
    assert plain.headers["Cache-Control"] == "no-cache"


def test_fingerprinted_assets_are_cached_for_a_year(static_client: Client, site_dir: Path) -> None:
    bundle = next((site_dir / "assets" / "javascripts").glob("bundle.*.min.js")).name
    response = static_client.get(f"/assets/javascripts/{bundle}")
    assert response.headers["Cache-Control"] == "max-age=315360000, public, immutable"
    assert response.headers["Content-Type"].startswith("text/javascript")


def test_folders_redirect_to_the_slash_and_unknown_paths_get_the_404_page(static_client: Client) -> None:
    client = static_client
    assert client.get("/contact").headers["Location"] == "contact/"  # relative: /contact -> /contact/
    missing = client.get("/bestaat-niet/")
    assert missing.status_code == 404 and b"<html" in missing.data
    assert client.get("/../pyproject.toml").status_code == 404
    assert client.get("/%2e%2e/pyproject.toml").status_code == 404
    assert client.post("/").status_code == 405


def test_api_paths_go_to_the_app(static_client: Client) -> None:
    client = static_client
    assert client.get("/api/csrf").json["csrf_token"]
    assert client.get("/download/nope").status_code == 404
    assert b"Deze link werkt niet" in client.get("/download/nope").data


def test_impossible_file_names_get_the_404_page_with_the_headers(static_client: Client) -> None:
    """A NUL byte or a path segment longer than any file name gave an English 500 with no security
    headers (and a traceback in the log); they are simply pages that do not exist."""
    for path in ("/%00", "/a%00b/", "/" + "a" * 300, "/blog/" + "b" * 300 + "/"):
        response = static_client.get(path)
        assert response.status_code == 404, path
        assert "Content-Security-Policy" in response.headers and b"<html" in response.data, path


def test_static_files_allow_no_other_origin(static_client: Client, site_dir: Path) -> None:
    """As nginx serves them: WhiteNoise's default `Access-Control-Allow-Origin: *` is off."""
    bundle = next((site_dir / "assets" / "javascripts").glob("bundle.*.min.js")).name
    for path in ("/", f"/assets/javascripts/{bundle}"):
        assert "Access-Control-Allow-Origin" not in static_client.get(path).headers, path
