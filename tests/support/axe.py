"""axe-core in a page: the accessibility checks a screen-reader user relies on.

axe-core comes from tests/package.json (`make test` runs `npm ci` there); AXE_CORE names another copy.
The page's context must bypass the CSP to take the injected script; the other tests run under it."""

from __future__ import annotations

import os
from pathlib import Path

AXE = Path(os.environ.get("AXE_CORE") or Path(__file__).resolve().parents[1] / "node_modules/axe-core/axe.min.js")


def serious_violations(page) -> list[tuple]:
    """axe's serious and critical findings on the page as it is now, once animations (the cookie
    banner sliding in) have ended: (rule, impact, first few targets)."""
    assert AXE.is_file(), f"axe-core is missing at {AXE}: run `npm ci --prefix tests` or set AXE_CORE"
    page.wait_for_function("document.getAnimations().every(a => a.playState !== 'running')")
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate("async () => (await axe.run()).violations")
    return [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in violations
            if v["impact"] in ("serious", "critical")]
