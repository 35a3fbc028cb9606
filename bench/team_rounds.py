"""A team round as `make run` serves it: how long a member waits for their own result, and how long the
leader's report takes with a full round.

Why: issue 23 asks for the time from the last answer to the result on screen. A leader starts a round
over HTTP (the mailed link read from the file mail backend), members answer in the system Chromium with
JavaScript on (scorecard.js posts and swaps in the result) and off (a plain POST and a new page): the
time is from the click on "Verstuur mijn antwoorden" to the result's heading on screen. Then the round
is filled to its cap over HTTP (each answer's round trip timed), closed, and the report fetched.
The machine's load is printed beside the figures; nothing is asserted.

    python bench/team_rounds.py              # 10 members per mode in Chromium, the round filled to its cap
    python bench/team_rounds.py --members 3
"""

from __future__ import annotations

import argparse
import email
import http.cookiejar
import os
import re
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from email import policy
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import chromium, compress_site, make_run_server, mkdocs_build  # noqa: E402

from site_config import load_settings  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TOKEN = re.compile(r'name="formulier" value="([^"]+)"')
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))


def fetch(client: urllib.request.OpenerDirector, url: str, data: dict | None = None) -> str:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with client.open(url, data=body, timeout=30) as response:
            return response.read().decode()
    except urllib.error.HTTPError as error:   # a Dutch page with a 4xx is still an answer
        return error.read().decode()


def leader_link(instance: Path) -> str:
    for path in sorted((instance / "mail").glob("*.eml"), reverse=True):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        found = re.search(r"http://\S+/team/leider/\S+", message.get_body(("plain",)).get_content())
        if found:
            return found.group(0)
    raise RuntimeError("no team round mail in the instance's mail folder")


def start_round(url: str, instance: Path) -> tuple[str, str]:
    client = opener()
    page = fetch(client, url + "/team/teams/")
    fetch(client, url + "/team/teams/", {"name": "Bench Leider", "email": "leider@example.be", "privacy": "y",
                                         "csrf_token": CSRF.search(page).group(1)})
    deadline = time.monotonic() + 20
    while True:
        try:
            leader = leader_link(instance)
            break
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    share = re.search(r'id="deellink" type="text" readonly value="([^"]+)"', fetch(client, leader)).group(1)
    return leader, share


def member_in_browser(browser, share: str, js: bool) -> float:
    """Seconds from the click on the submit button to the result's heading on screen."""
    context = browser.new_context(java_script_enabled=js)
    page = context.new_page()
    page.goto(share)
    checklist = load_settings().checklist("teams")
    for index, dimension in enumerate(checklist.dimensions):
        for n in range(1, len(dimension.statements) + 1):
            page.locator(f"#teams-{dimension.id}-{n} label").nth((index + n) % 5).click()
        if js and index < len(checklist.dimensions) - 1:
            page.get_by_role("button", name="Volgende thema").click()
    button = page.get_by_role("button", name="Verstuur mijn antwoorden")
    start = time.perf_counter()
    button.click()
    page.get_by_role("heading", name="Jouw resultaat").wait_for(state="visible")
    elapsed = time.perf_counter() - start
    context.close()
    return elapsed


def answers_over_http(share: str, count: int) -> list[float]:
    """Seconds per answer POST (form fetched first, not timed)."""
    keys = [f"{d.id}-{n}" for d in load_settings().checklist("teams").dimensions
            for n in range(1, len(d.statements) + 1)]
    times = []
    for i in range(count):
        client = opener()
        token = TOKEN.search(fetch(client, share)).group(1)
        data = {key: str(1 + (i + j) % 5) for j, key in enumerate(keys)} | {"formulier": token}
        start = time.perf_counter()
        page = fetch(client, share, data)
        times.append(time.perf_counter() - start)
        assert "Jouw resultaat" in page, page[:300]
    return times


def summary(times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"median {statistics.median(ms):.0f} ms, p95 {p95:.0f} ms, max {ms[-1]:.0f} ms (n={len(ms)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=10, help="members per mode in Chromium")
    args = parser.parse_args()
    cap = load_settings().limits.team_answers_per_round
    with tempfile.TemporaryDirectory(prefix="bench-teams-") as tmp:
        site = Path(tmp) / "site"
        build = mkdocs_build(ROOT / "mkdocs.yml", site, "site")
        compress_site(site)
        print(f"site built in {build.seconds:.1f} s; load {os.getloadavg()[0]:.1f}")
        instance = Path(tmp) / "instance"
        with make_run_server(site, instance, env={"LEADFORM_RATELIMIT_ENABLED": "false"}) as url:
            leader, share = start_round(url, instance)
            with chromium() as browser:
                member_in_browser(browser, share, True)   # warm-up: the first page pays for imports
                for js in (True, False):
                    times = [member_in_browser(browser, share, js) for _ in range(args.members)]
                    print(f"member, click to result on screen, JavaScript {'on ' if js else 'off'}: "
                          f"{summary(times)}; load {os.getloadavg()[0]:.1f}")
            answered = 1 + 2 * args.members
            times = answers_over_http(share, cap - answered)
            print(f"answer POST over HTTP up to the cap of {cap}: {summary(times)}; load {os.getloadavg()[0]:.1f}")
            client = opener()
            page = fetch(client, leader)
            fetch(client, leader + "/sluiten", {"csrf_token": CSRF.search(page).group(1)})
            start = time.perf_counter()
            report = fetch(client, leader)
            elapsed = time.perf_counter() - start
            assert f"{cap} teamleden vulden" in report, report[:300]
            print(f"team report with {cap} answers: {elapsed * 1000:.0f} ms, {len(report.encode()) / 1024:.0f} KB "
                  f"of HTML; load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
