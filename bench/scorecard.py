"""The checklist on the page (issue 23): what a visitor waits for and downloads.

- first view of /checklists/teams/ and /checklists/leiderschap/ in bytes sent gzip-compressed (budget
  100 KB), in a fresh Chromium context on the built site (bench/common.gzip_server);
- time from the click on "Toon mijn resultaat" after the last answer to the result painted, with
  JavaScript (the app's fragment swapped in) and without (the app's whole result page), against
  `make run`'s server (gunicorn + WhiteNoise, SQLite);
- the personal report PDF: size and time to render it (in process, leadform.pdf.render_report_pdf),
  and the whole download request (`GET /download/rapport/<token>`, test client on SQLite);
- screenshots of each step at 390 and 1366 px into SHOTS (default /work/coord/shots/scorecard/).

    python bench/scorecard.py [--runs 10] [--shots DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

from common import (
    RESULTS,
    ROOT,
    chromium,
    compress_site,
    gzip_server,
    in_process_app_env,
    make_run_server,
    mkdocs_build,
)
from pypdf import PdfReader

PATTERN = [[1, 2, 2, 3, 1], [3, 3, 3, 3, 3], [5, 4, 4, 4, 5], [2, 3, 2, 3, 2], [4, 4, 4, 4, 4]]
PAINTED = """() => new Promise(resolve => {
  const target = document.querySelector('[data-scorecard-result]');
  const start = performance.now();
  document.querySelector('form[data-scorecard] button[type=submit]').click();
  new MutationObserver((_, observer) => {
    if (!target.querySelector('h2')) return;
    observer.disconnect();
    requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - start)));
  }).observe(target, {childList: true, subtree: true});
})"""


def answer(page, slug: str, dimension_ids: list[str], values: list[list[int]], step: bool,
           shots: Path | None = None, width: int = 0) -> None:
    for i, (dim, theme) in enumerate(zip(dimension_ids, values, strict=True)):
        for n, value in enumerate(theme, start=1):
            page.locator(f"#{slug}-{dim}-{n} label").nth(value - 1).click()
        if shots and i in (0, len(values) - 1):
            page.locator("form[data-scorecard]").screenshot(path=str(shots / f"{width}-03-thema-{i + 1}.png"))
        if step and i < len(values) - 1:
            page.get_by_role("button", name="Volgende thema").click()


def first_view(browser, site_dir: Path) -> dict[str, int]:
    weights = {}
    with gzip_server(site_dir) as (base, log):
        for slug in ("teams", "leiderschap"):
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.goto(f"{base}/checklists/{slug}/", wait_until="networkidle")
            page.wait_for_timeout(300)
            weights[slug] = sum(h.body_bytes for h in log.take())
            context.close()
    return weights


def result_times(browser, url: str, runs: int) -> dict[str, list[float]]:
    from leadform.scoring import load_checklist

    dims = [d.id for d in load_checklist("teams").dimensions]
    times: dict[str, list[float]] = {"javascript": [], "no_javascript": []}
    for _ in range(runs):
        context = browser.new_context()
        page = context.new_page()
        page.goto(url + "/checklists/teams/")
        answer(page, "teams", dims, PATTERN, step=True)
        times["javascript"].append(page.evaluate(PAINTED))
        context.close()
        context = browser.new_context(java_script_enabled=False)
        page = context.new_page()
        page.goto(url + "/checklists/teams/")
        answer(page, "teams", dims, PATTERN, step=False)
        start = time.perf_counter()
        page.get_by_role("button", name="Toon mijn resultaat").click()
        page.wait_for_load_state("load")
        page.get_by_role("heading", name="Je resultaat", exact=True).wait_for()
        times["no_javascript"].append((time.perf_counter() - start) * 1000)
        context.close()
    return times


def mail_html(mail_dir: Path, seconds: float = 15) -> str:
    """The HTML part of the newest report mail the server wrote (the file backend of `make run`)."""
    import email
    from email import policy

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for path in sorted(mail_dir.glob("*.eml"), reverse=True):
            message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
            if "rapport" in message["Subject"]:
                return message.get_body(("html",)).get_content()
        time.sleep(0.2)
    raise RuntimeError(f"no report mail in {mail_dir}")


def shot(page, path: Path, **options) -> None:
    """A screenshot once the page has loaded; Chromium under load now and then refuses the first try."""
    page.wait_for_load_state("load")
    try:
        page.screenshot(path=str(path), **options)
    except Exception:  # noqa: BLE001 - "Unable to capture screenshot": once more after a pause
        page.wait_for_timeout(1000)
        page.screenshot(path=str(path), **options)


def screenshots(browser, url: str, shots: Path, mail_dir: Path) -> list[str]:
    from leadform.scoring import load_checklist

    dims = [d.id for d in load_checklist("teams").dimensions]
    shots.mkdir(parents=True, exist_ok=True)
    for width in (390, 1366):
        context = browser.new_context(viewport={"width": width, "height": 900 if width > 500 else 844})
        page = context.new_page()
        page.goto(url + "/checklists/teams/")
        page.get_by_role("button", name="Alles weigeren").click()   # the cookie banner, once per context
        page.locator("#vul-de-checklist-meteen-hier-in").scroll_into_view_if_needed()
        shot(page, shots / f"{width}-01-pagina.png")
        page.locator("#teams-vertrouwen-1 label").nth(0).click()
        page.get_by_role("button", name="Volgende thema").click()
        page.locator("form[data-scorecard]").screenshot(path=str(shots / f"{width}-02-open-uitspraken.png"))
        answer(page, "teams", dims, PATTERN, step=True, shots=shots, width=width)
        page.get_by_role("button", name="Toon mijn resultaat").click()
        page.get_by_role("heading", name="Je resultaat", exact=True).wait_for()
        page.wait_for_timeout(400)
        shot(page, shots / f"{width}-04-resultaat-scherm.png")
        box = page.locator("#resultaat").bounding_box()   # the whole result, without the sticky header on it
        box["y"] += page.evaluate("window.scrollY")
        page.screenshot(path=str(shots / f"{width}-05-resultaat-geheel.png"), full_page=True, clip=box)
        report = page.locator("form[action='/api/scorecard/teams/rapport']")
        report.get_by_label("Je naam").fill("Sofie Peeters")
        report.get_by_label("Je e-mailadres").fill("sofie@example.be")
        report.get_by_label("Ik heb de privacyverklaring gelezen").check()
        report.screenshot(path=str(shots / f"{width}-06-rapport-aanvragen.png"))
        report.get_by_role("button", name="Stuur mij mijn persoonlijk rapport").click()
        page.wait_for_url("**/rapport-verstuurd/")
        shot(page, shots / f"{width}-07-rapport-verstuurd.png")
        mail_page = context.new_page()   # about:blank: the site's CSP would refuse the mail's inline styles
        mail_page.set_content(mail_html(mail_dir))
        mail_page.screenshot(path=str(shots / f"{width}-07b-mail.png"), full_page=True)
        context.close()
        context = browser.new_context(java_script_enabled=False,
                                      viewport={"width": width, "height": 900 if width > 500 else 844})
        page = context.new_page()
        page.goto(url + "/checklists/teams/")
        answer(page, "teams", dims, [PATTERN[0][:4], *PATTERN[1:]], step=False)
        page.get_by_role("button", name="Toon mijn resultaat").click()
        shot(page, shots / f"{width}-08-zonder-js-onvolledig.png")
        page.locator("#teams-vertrouwen-5 label").nth(0).click()
        page.get_by_role("button", name="Toon mijn resultaat").click()
        shot(page, shots / f"{width}-09-zonder-js-resultaat.png", full_page=True)
        context.close()
    return sorted(p.name for p in shots.glob("*.png"))


def report_pdf(runs: int, shots: Path) -> dict[str, float]:
    """Render the personal PDF in process, then the whole download request on a SQLite app."""
    from leadform.pdf import render_report_pdf
    from leadform.scoring import answer_keys, load_checklist, score

    checklist = load_checklist("teams")
    values = [v for theme in PATTERN for v in theme]
    answers = dict(zip(answer_keys(checklist), values, strict=True))
    result = score(checklist, answers)
    render_ms = []
    for _ in range(runs):
        start = time.perf_counter()
        pdf = render_report_pdf(result, name="Sofie Peeters", day=dt.date.today())
        render_ms.append((time.perf_counter() - start) * 1000)
    (shots / "rapport-teams.pdf").write_bytes(pdf)

    with tempfile.TemporaryDirectory() as instance:
        in_process_app_env(instance)
        from sqlalchemy import select

        from leadform import create_app, db, outbox
        from leadform.models import OutboxMail

        app = create_app({"WTF_CSRF_ENABLED": False})
        client = app.test_client()
        request_ms = []
        for i in range(runs):
            form = {**{k: str(v) for k, v in answers.items()}, "name": "Sofie Peeters",
                    "email": f"sofie{i}@example.be", "privacy": "y"}
            client.post("/api/scorecard/teams/rapport", data=form)
            with app.app_context(), db.transaction() as s:
                mail = s.scalars(select(OutboxMail).order_by(OutboxMail.id.desc())).first()
                token = re.search(r"/download/(rapport/\S+)", outbox.bodies(mail)[0]).group(1)
            start = time.perf_counter()
            response = client.get("/download/" + token)
            request_ms.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200
        app.extensions["leadform.engine"].dispose()
    return {"bytes": len(pdf), "pages": len(PdfReader(io.BytesIO(pdf)).pages),
            "render_ms_median": round(statistics.median(render_ms), 1), "render_ms_max": round(max(render_ms), 1),
            "download_request_ms_median": round(statistics.median(request_ms), 1)}


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median": round(statistics.median(ordered), 1), "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 1),
            "max": round(ordered[-1], 1), "runs": len(ordered)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--shots", type=Path, default=Path("/work/coord/shots/scorecard"))
    args = parser.parse_args()
    args.shots.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        site_dir = Path(tmp) / "site"
        build = mkdocs_build(ROOT / "mkdocs.yml", site_dir, "scorecard")
        if build.returncode:
            raise SystemExit(build.stderr_tail)
        compress_site(site_dir)
        out: dict[str, object] = {}
        with chromium() as browser:
            out["first_view_bytes"] = first_view(browser, site_dir)
            with make_run_server(site_dir, Path(tmp) / "instance",
                                 env={"LEADFORM_RATELIMIT_ENABLED": "false"}) as url:
                times = result_times(browser, url, args.runs)
                out["result_ms"] = {k: summary(v) for k, v in times.items()}
                out["screenshots"] = screenshots(browser, url, args.shots, Path(tmp) / "instance" / "mail")
        out["report_pdf"] = report_pdf(args.runs, args.shots)
    print(json.dumps(out, indent=2))
    (RESULTS / "scorecard.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
