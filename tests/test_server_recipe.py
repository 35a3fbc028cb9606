"""The server recipe in deploy/, as far as this machine can run it: the systemd units (checked by
`systemd-analyze verify` with the checkout folder in place of /srv/coach), Caddy in front of gunicorn
with a certificate from its internal CA, the coach's commands reading the server's settings file, and
the CI workflows that carry a push to the server."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, TEST_DATABASE_URL
from support.headers import COMMON, assert_secure, bundle_path
from support.https import fetch
from support.postgres import throwaway_database

from deploy import local
from leadform.web import APP_POLICY
from site_config import csp

UNITS = ROOT / "deploy" / "systemd"
ENV_FILE = "/etc/coach/leadform.env"


def rendered_units(dest: Path, checkout: Path) -> list[Path]:
    """The units as deploy/install.sh installs them: /srv/coach replaced by the checkout folder."""
    dest.mkdir()
    for unit in sorted(UNITS.iterdir()):
        (dest / unit.name).write_text(unit.read_text().replace("/srv/coach", str(checkout)))
    return sorted(dest.iterdir())


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(path)
    return parser


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    systemd_analyze = shutil.which("systemd-analyze")
    assert systemd_analyze, "systemd-analyze not found: apt-get install -y systemd"
    units = rendered_units(tmp_path / "units", ROOT)
    result = subprocess.run([systemd_analyze, "verify", "--man=no", *map(str, units)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr

    # ... and it would have said so about a command that is not there.
    broken = tmp_path / "units" / "coach-purge.service"
    broken.write_text(broken.read_text().replace(".venv/bin/flask", ".venv/bin/no-such-flask"))
    result = subprocess.run([systemd_analyze, "verify", "--man=no", str(broken)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0 and "no-such-flask" in result.stderr


def test_every_service_reads_the_one_settings_file_and_runs_what_the_venv_holds(tmp_path: Path) -> None:
    services = {p.name: unit(p) for p in rendered_units(tmp_path / "units", ROOT) if p.suffix == ".service"}
    assert set(services) == {"coach-leadform.service", "coach-purge.service", "coach-backup.service"}
    for name, service in services.items():
        section = service["Service"]
        assert section["EnvironmentFile"] == ENV_FILE, name
        assert section["User"] == "coach" and section["WorkingDirectory"] == str(ROOT), name
        binary = Path(section["ExecStart"].split()[0])
        assert binary.is_file() and os.access(binary, os.X_OK), f"{name}: {binary}"
        assert "StandardOutput" not in section, "logs go to the journal (the default)"
    assert services["coach-leadform.service"]["Service"]["ExecStart"].endswith(
        "-c deploy/gunicorn.conf.py leadform.wsgi:with_site()")
    assert services["coach-purge.service"]["Service"]["ExecStart"].endswith("flask --app leadform gdpr purge")
    for timer in ("coach-purge.timer", "coach-backup.timer"):
        schedule = unit(UNITS / timer)["Timer"]
        assert re.fullmatch(r"\*-\*-\* \d\d:\d\d:00", schedule["OnCalendar"]), "daily"
        assert schedule["Persistent"] == "true", "a day the machine was off catches up"


@pytest.mark.postgresql
def test_make_leads_on_the_server_reads_the_database_of_the_settings_file(make_app, tmp_path: Path) -> None:
    """On the server `make leads` shows what PostgreSQL holds, not a fresh development database."""
    with throwaway_database() as url:
        app = make_app(WTF_CSRF_ENABLED=False, DATABASE_URL=url)
        for i in range(5):
            assert app.test_client().post("/api/checklists/teams", data={
                "name": "Productie", "email": f"productie-{i}@example.be", "privacy": "y"}).status_code == 303
        app.extensions["leadform.engine"].dispose()
        env_file = tmp_path / "leadform.env"
        env_file.write_text(f"# as /etc/coach/leadform.env\nLEADFORM_SECRET_KEY={'s' * 64}\n"
                            f"LEADFORM_DATABASE_URL={url}\nLEADFORM_INSTANCE_PATH={tmp_path / 'server'}\n"
                            "LEADFORM_SECRET_KEY_FALLBACKS='[\"an-older-key-with-spaces in it\"]'\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFORM_")}
        result = subprocess.run(["make", "-s", "leads", f"LEADFORM_ENV_FILE={env_file}"], cwd=ROOT,
                                env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert all(f"productie-{i}@example.be" in result.stdout for i in range(5)), result.stdout
        assert not (tmp_path / "server" / "dev-secret").exists(), "the settings file's secret, not a dev one"

        # A settings file the user may not read (not in the coach group) stops the command, with the
        # default path too, instead of showing a fresh development database.
        folder = Path(tempfile.mkdtemp(prefix="coach-etc-"))
        try:
            folder.chmod(0o755)
            shutil.copy(env_file, folder / "leadform.env")
            (folder / "leadform.env").chmod(0o640)
            as_other = {"user": "nobody", "group": "nogroup", "extra_groups": []} if os.geteuid() == 0 else {}
            if not as_other:
                (folder / "leadform.env").chmod(0o000)
            for args, extra in [([f"LEADFORM_ENV_FILE={folder / 'leadform.env'}"], {}),
                                ([], {"LEADFORM_ENV_FILE": str(folder / "leadform.env")})]:
                denied = subprocess.run(["make", "-s", "leads", *args], cwd=ROOT, env={**env, **extra},
                                        capture_output=True, text=True, timeout=120, **as_other)
                assert denied.returncode != 0 and "@example.be" not in denied.stdout
                assert f"cannot open {folder / 'leadform.env'}" in denied.stderr, denied.stderr
        finally:
            shutil.rmtree(folder)


# -- Caddy in front (HTTPS from the first start) -----------------------------------------------------------

@pytest.fixture(scope="module")
def caddy(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, site_dir: Path,
          pdf_dir: Path):
    env = {"LEADFORM_SECRET_KEY": "test-" + "0" * 40, "LEADFORM_PDF_DIR": str(pdf_dir),
           "LEADFORM_OUTBOX_THREAD": "false", "LEADFORM_RATELIMIT_ENABLED": "false", "LEADFORM_MAIL_BACKEND": "file",
           "LEADFORM_ALLOW_FILE_MAIL": "1"}
    if TEST_DATABASE_URL:
        request.getfixturevalue("_postgresql_schema")
        env["LEADFORM_DATABASE_URL"] = TEST_DATABASE_URL
    with local.caddy_and_app(site_dir, tmp_path_factory.mktemp("caddy"), env) as running:
        yield running


def test_caddy_serves_the_site_over_https_with_the_same_headers_as_make_run(caddy, site_dir: Path) -> None:
    policy = csp.read_policy(site_dir)
    forever = r"max-age=\d{8,}, public, immutable"  # WhiteNoise's words for a fingerprinted file
    for path, status, cache in [("/", 200, "no-cache"), ("/blog/", 200, "no-cache"),
                                (bundle_path(site_dir), 200, forever), ("/bestaat-niet/", 404, "no-cache"),
                                ("/.csp.json", 404, "no-cache")]:
        response, _ = fetch(caddy, path)
        assert response.status == status, path
        assert_secure(response.headers, policy, https=True)
        assert re.fullmatch(cache, response.headers["Cache-Control"]), path
        names = [name.lower() for name, _ in response.getheaders()]
        for name in [*COMMON, "Content-Security-Policy", "Strict-Transport-Security", "Cache-Control"]:
            assert names.count(name.lower()) == 1, f"{path}: {name} sent {names.count(name.lower())} times"
        assert "server" not in names, "no software banner"

    api, _ = fetch(caddy, "/api/csrf")
    assert api.status == 200
    assert_secure(api.headers, APP_POLICY, https=True)
    assert api.headers["Cache-Control"] == "no-store"


def test_caddy_sends_plain_http_and_the_bare_domain_to_https_www(caddy) -> None:
    plain, _ = fetch(caddy, "/blog/?x=1", https=False)
    assert plain.status in (301, 308)
    assert plain.headers["Location"] == f"https://{local.HOST}/blog/?x=1"  # to the standard port, as in production
    bare = local.HOST.removeprefix("www.")
    redirect, _ = fetch(caddy, "/diensten/", host=bare)
    assert redirect.status == 301 and redirect.headers["Location"] == f"https://{local.HOST}/diensten/"


# -- CI: deploy on push, and daily ------------------------------------------------------------------------

PINNED = re.compile(r"^actions/(checkout|setup-python)@[0-9a-f]{40}$")


def test_github_workflow_tests_then_deploys_on_push_to_main_and_daily() -> None:
    text = (ROOT / ".github" / "workflows" / "deploy.yml").read_text()
    workflow = yaml.safe_load(text)
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers["push"]["branches"] == ["main"]
    assert re.fullmatch(r"\d+ \d+ \* \* \*", triggers["schedule"][0]["cron"]), "once a day"
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    uses = [step["uses"] for step in steps if "uses" in step]
    assert uses and all(PINNED.match(u) for u in uses), uses
    runs = [step.get("run", "") for step in steps]
    test_step = next(i for i, run in enumerate(runs) if ".ci/run" in run)
    deploy_step = next(i for i, run in enumerate(runs) if "make deploy" in run)
    assert test_step < deploy_step, "the tests gate the deploy"
    assert "${{" not in runs[deploy_step], "secrets reach the script through env, never pasted into it"


def test_gitlab_pipeline_does_the_same() -> None:
    pipeline = yaml.safe_load((ROOT / ".gitlab-ci.yml").read_text())
    rules = pipeline["workflow"]["rules"]
    assert rules == [{"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"}]
    script = pipeline["test-and-deploy"]["script"]
    assert script.index(".ci/run") < script.index("make deploy")


def test_the_recipes_shell_scripts_parse() -> None:
    """install.sh cannot run here (it installs packages and enables services); the other scripts run in
    test_deploy.py and test_backup.py. All of them at least parse."""
    for script in sorted((ROOT / "deploy").glob("*.sh")):
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, f"{script.name}: {result.stderr}"
        assert os.access(script, os.X_OK), f"{script.name} is not executable"
