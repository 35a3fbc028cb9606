"""Render the app's form templates outside a request: the static forms of the site.

The build calls `static_form_html()` so the pages carry exactly the HTML the
app renders when it has to show a form again (errors, a missing token).
"""

from __future__ import annotations

from functools import cache

from flask import Flask, render_template

from leadform.forms import ChecklistForm, ContactForm


@cache
def _renderer() -> Flask:
    app = Flask("leadform", template_folder="templates")
    app.config.update(SECRET_KEY="static-build", WTF_CSRF_ENABLED=False)  # noqa: S106 - renders HTML only, signs nothing
    return app


def static_form_html(kind: str, **context: object) -> str:
    """The form of one flow as static HTML, its CSRF token left for forms.js to fill."""
    app = _renderer()
    with app.test_request_context():
        form = ChecklistForm() if kind == "checklist" else ContactForm()
        return render_template(f"forms/{kind}.html", form=form, csrf_token="", started="", **context)
