"""GET /api/health: a trivial route for load balancers and as the benchmarks' baseline."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("health", __name__)


@bp.get("/api/health")
def health():
    return {"status": "ok"}
