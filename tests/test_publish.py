"""Publishing never breaks the live site (site_config/publish.py).

The whole story runs against real servers on loopback ports: `make run`'s gunicorn + WhiteNoise, and
nginx from deploy/nginx.conf in front of gunicorn. While visitors keep asking for pages, a post with a
broken link is built (it fails, in Dutch, and nothing served changes), then a good post in a new
category (new list pages, new CSP hashes); then `make rollback`. Every answer during all of it must
be a 200 with the security headers and a CSP that allows the page's inline scripts, and Chromium runs
the new pages without a CSP violation.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import CHROMIUM, CHROMIUM_ARGS, ROOT
from support.publishing import MARKER, PATHS, Target, Watch, one_post_per_list_page, publish, write_posts

from deploy import local
from site_config import csp
from site_config.publish import KEEP, releases

NEW_PAGES = ["/blog/een-nieuw-bericht/", "/blog/category/publiceren/", "/blog/category/publiceren/page/2/"]
RECORDER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.effectiveDirective} blocked ${e.blockedURI || "inline"} ${e.sample || ""}`);
});
"""


def wait_for_health(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url + "/api/health", timeout=2).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def eventually(target: Target, path: str, status: int, seconds: float = 10) -> tuple[int, dict[str, str], bytes]:
    """nginx -s reload only signals the master: its new workers take over a moment later (until then
    the old ones serve the previous release, whole)."""
    deadline = time.monotonic() + seconds
    while True:
        answer = target.get(path)
        if answer[0] == status or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


def link(project: Path) -> str:
    return os.readlink(project / "site")


def run_in_chromium(chromium, urls: list[str]) -> list[str]:
    """Open each page in a Chromium of its own (nginx's host name resolved to loopback), started by the
    session's Playwright (a second Playwright in one thread refuses to start); what went wrong, if anything."""
    wrong = []
    browser = chromium.browser_type.launch(executable_path=CHROMIUM, args=[
        *CHROMIUM_ARGS, f"--host-resolver-rules=MAP {local.HOST} 127.0.0.1"])
    context = browser.new_context(ignore_https_errors=True)   # nginx's throwaway CA
    context.add_init_script(RECORDER)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if "Content Security Policy" in m.text else None)
    for url in urls:
        response = page.goto(url, wait_until="networkidle")
        if response is None or response.status != 200:
            wrong.append(f"{url}: {response.status if response else 'no response'}")
            continue
        # Material's inline scripts ran (they define __md_get) and so did its bundle (document$).
        if page.evaluate("typeof __md_get") != "function" or page.evaluate("typeof document$") != "object":
            wrong.append(f"{url}: Material's scripts did not run")
        wrong += [f"{url}: {v}" for v in page.evaluate("window.__cspViolations")]
    browser.close()
    return wrong + console


@pytest.mark.browser
def test_builds_and_a_rollback_never_fail_a_visitor(project_copy: Path, tmp_path: Path, pdf_dir: Path,
                                                       browser) -> None:
    project = project_copy
    env = {"LEADFORM_PDF_DIR": str(tmp_path / "pdfs")}
    one_post_per_list_page(project)
    first = publish(project, "build", env=env)
    assert first.returncode == 0, first.stderr
    r1 = link(project)
    assert r1.startswith("releases/") and (project / "site").is_symlink()
    assert {p.name for p in (tmp_path / "pdfs").iterdir()} == {p.name for p in pdf_dir.iterdir()}

    run_port = local.free_port()
    run_env = {"LEADFORM_DEV_SECRET": "1", "LEADFORM_SITE_DIR": str(project / "site"), "LEADFORM_PDF_DIR": str(pdf_dir),
               "LEADFORM_INSTANCE_PATH": str(tmp_path / "run"), "LEADFORM_OUTBOX_THREAD": "false"}
    app_env = {"LEADFORM_SECRET_KEY": os.urandom(32).hex(), "LEADFORM_ALLOW_FILE_MAIL": "1",
               "LEADFORM_PDF_DIR": str(pdf_dir), "LEADFORM_OUTBOX_THREAD": "false"}
    with local.gunicorn(run_env, run_port, wsgi="leadform.wsgi:with_site()", log=tmp_path / "run.log"), \
            local.nginx_and_app(project / "site", tmp_path / "deploy", app_env) as nginx:
        wait_for_health(f"http://127.0.0.1:{run_port}")
        reload = f"{local.NGINX} -p {nginx.prefix} -c {nginx.prefix / 'nginx.conf'} -s reload"
        # Before reloading, look at both servers in the moment after the swap: what nginx serves then.
        window = tmp_path / "window"
        look = (f"curl -sf --cacert {nginx.ca} --resolve {local.HOST}:{nginx.https_port}:127.0.0.1 "
                f"-D {window}-nginx.headers -o {window}-nginx.html https://{local.HOST}:{nginx.https_port}/ && "
                f"curl -sf -D {window}-run.headers -o {window}-run.html http://127.0.0.1:{run_port}/")
        env["SITE_RELOAD_COMMAND"] = f"{look} && {reload}"
        targets = [Target("make run", run_port), Target("nginx", nginx.https_port, https=True, ca=nginx.ca,
                                                        host=local.HOST)]
        with Watch(targets) as watch:
            with watch.phase("failed build"):
                posts = write_posts(project, body="Zie [de diensten](../../diensten/bestaat-niet.md).")
                failed = publish(project, "build", env=env)
            assert failed.returncode == 1
            assert "docs/blog/posts/nieuw-bericht-1.md" in failed.stderr and "bestaat niet" in failed.stderr
            assert "De build is mislukt" in failed.stderr and "Er is niets veranderd" in failed.stderr
            assert link(project) == r1 and [p.name for p in releases(project)] == [Path(r1).name]
            assert not any((project / "releases").glob(".building-*"))

            with watch.phase("good build"):
                write_posts(project, body="Zie [teamcoaching](../../diensten/teamcoaching.md).")
                good = publish(project, "build", env=env)
            assert good.returncode == 0, good.stderr
            r2 = link(project)
            assert r2 != r1 and "Online: " + r2 in good.stdout
            old_policy, new_policy = csp.read_policy(project / r1), csp.read_policy(project / "site")
            assert set(new_policy.split()) > set(old_policy.split())   # the new list pages brought new hashes
            # Between the swap and nginx's reload: make run already serves the new release, nginx still
            # the old one, each with its own policy (nginx's root is the release its include names).
            for server, new in (("run", True), ("nginx", False)):
                page = Path(f"{window}-{server}.html").read_bytes()
                sent = Path(f"{window}-{server}.headers").read_text().lower()
                assert (MARKER in page) is new, server
                assert f"content-security-policy: {(new_policy if new else old_policy).lower()}\n" in sent, server
            for target in targets:
                for path in NEW_PAGES:
                    status, headers, _ = eventually(target, path, 200)
                    assert status == 200 and headers["Content-Security-Policy"] == new_policy, (target.name, path)
            wrong = run_in_chromium(browser, [f"http://127.0.0.1:{run_port}{p}" for p in NEW_PAGES]
                                    + [f"https://{local.HOST}:{nginx.https_port}{p}" for p in NEW_PAGES])
            assert wrong == []

            with watch.phase("rollback"):
                back = subprocess.run(["make", "-s", "-C", str(project), "-f", str(ROOT / "Makefile"), "rollback",
                                       f"VENV={ROOT / '.venv'}", "-o", f"{ROOT / '.venv'}/bin/.installed"],
                                      capture_output=True, text=True, timeout=300,
                                      env={**os.environ, **env})
                assert back.returncode == 0, back.stderr
                assert link(project) == r1
                for target in targets:   # while the watch goes on: nginx's old workers hand over
                    assert eventually(target, NEW_PAGES[0], 404)[0] == 404, target.name
                time.sleep(1)
        for post in posts:
            post.unlink()

    for name, phase in watch.phases.items():
        print(name, phase.summary())
        assert phase.requests >= 10, name
        assert phase.problems == [] and set(phase.statuses) == {200}, (name, phase.summary())
    # Each page came with the policy of the release it came from: the pages that link to the new posts
    # only with the new policy, the same pages without the link only with the old one.
    marked = [p for p in PATHS
              if p.endswith("/") and MARKER in (project / r2 / p.lstrip("/") / "index.html").read_bytes()]
    assert marked, "no watched page links to the new posts"
    for name in ("failed build", "good build", "rollback"):
        answers = [(t, p, m, policy) for t, p, m, policy in watch.phases[name].pages if p in marked]
        assert answers and all(policy == (new_policy if m else old_policy) for t, p, m, policy in answers), name
    assert any(m for *_, m, _ in watch.phases["good build"].pages), "the watch never saw the new release"


def copy_release(site_dir: Path, project: Path, name: str) -> Path:
    folder = project / "releases" / name
    shutil.copytree(site_dir, folder)
    return folder


def test_activate_keeps_five_releases_and_rollback_steps_back_one(site_dir: Path, tmp_path: Path) -> None:
    project = tmp_path
    names = [f"2026120{n}T100000Z-abc{n}" for n in range(1, 8)]
    for name in names:
        result = publish(project, "activate", str(copy_release(site_dir, project, name)))
        assert result.returncode == 0, result.stderr
        assert link(project) == f"releases/{name}"
        conf = (project / "site" / csp.NGINX_FILE).read_text()
        assert f'root "{(project / "releases" / name).resolve()}";' in conf   # nginx serves exactly this one
    assert [p.name for p in releases(project)] == names[-KEEP:]
    result = publish(project, "rollback")
    assert result.returncode == 0 and link(project) == f"releases/{names[-2]}"
    assert f"vorige: {names[-1]}" in result.stdout


def test_an_old_site_folder_is_moved_aside_once_and_can_be_rolled_back_to(site_dir: Path, tmp_path: Path) -> None:
    project = tmp_path
    shutil.copytree(site_dir, project / "site")
    result = publish(project, "activate", f"releases/{copy_release(site_dir, project, '20300101T000000Z-new').name}")
    assert result.returncode == 0, result.stderr
    assert link(project) == "releases/20300101T000000Z-new"
    old = [p.name for p in releases(project) if p.name.endswith("-oude-site")]
    assert len(old) == 1 and "De oude map site/ staat nu in releases/" in result.stderr
    assert publish(project, "rollback").returncode == 0
    assert link(project) == f"releases/{old[0]}"


def test_a_release_that_fails_its_checks_or_the_reload_changes_nothing(site_dir: Path, tmp_path: Path) -> None:
    project = tmp_path
    assert publish(project, "activate", str(copy_release(site_dir, project, "20260101T000000Z-good"))).returncode == 0

    tampered = copy_release(site_dir, project, "20260102T000000Z-tampered")
    page = tampered / "index.html"
    page.write_text(page.read_text().replace("</body>", "<script>alert(1)</script></body>"))
    result = publish(project, "activate", str(tampered))
    assert result.returncode == 1
    assert "staat niet in het beleid" in result.stderr and "Publiceren is mislukt" in result.stderr
    assert "Er is niets veranderd aan de site die online staat (releases/20260101T000000Z-good)" in result.stderr

    later = copy_release(site_dir, project, "20260103T000000Z-reload-fails")
    failing = {"SITE_RELOAD_COMMAND": "echo 'nginx: [emerg] oeps' >&2; exit 1"}
    result = publish(project, "activate", str(later), env=failing)
    assert result.returncode == 1 and "de webserver herladen lukte niet" in result.stderr and "oeps" in result.stderr
    assert link(project) == "releases/20260101T000000Z-good"

    result = publish(project, "activate", str(site_dir))
    assert result.returncode == 1 and "is geen map in" in result.stderr
    assert link(project) == "releases/20260101T000000Z-good"


def test_rollback_without_an_older_release_says_so(site_dir: Path, tmp_path: Path) -> None:
    project = tmp_path
    assert publish(project, "activate", str(copy_release(site_dir, project, "20260101T000000Z-only"))).returncode == 0
    result = publish(project, "rollback")
    assert result.returncode == 1 and "er is geen oudere versie om naar terug te gaan" in result.stderr
    assert link(project) == "releases/20260101T000000Z-only"
