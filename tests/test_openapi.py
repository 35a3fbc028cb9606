"""The hand-written OpenAPI description (leadform/openapi.yaml) matches the app: Schemathesis sends
generated valid and invalid requests to the WSGI app and checks every answer's status code,
content type, headers and body against the document, and that none is a 500.

Case counts stay small by default; OPENAPI_EXAMPLES=200 (or HYPOTHESIS_PROFILE=full) goes deeper.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
import yaml
from conftest import ROOT
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

SCHEMA_PATH = ROOT / "leadform" / "openapi.yaml"
FULL_RUN = os.environ.get("HYPOTHESIS_PROFILE") == "full"
EXAMPLES = int(os.environ.get("OPENAPI_EXAMPLES", "200" if FULL_RUN else "25"))
# GET /download/renew is the download route with the token "renew" (a 404 page): documented, not a route of its own.
ALIASES = {("/download/renew", "GET")}


def document_for_this_site() -> dict:
    """The document with the values that come from site_config filled in as they are today, so the
    coach can add a checklist, a cookie category or a policy version without touching the document."""
    from site_config import load_settings

    settings_ = load_settings()
    document = yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))
    slug = document["paths"]["/api/checklists/{slug}"]["post"]["parameters"][0]
    slug["schema"]["enum"] = list(settings_.checklist_slugs)
    document["components"]["parameters"]["TeamSlug"]["schema"]["enum"] = list(settings_.checklist_slugs)
    schemas = document["components"]["schemas"]
    consent = schemas["ConsentChoice"]["properties"]
    consent["policy_version"]["enum"] = [settings_.consent.policy_version]
    consent["choices"]["required"] = list(settings_.consent.category_ids)
    consent["choices"]["properties"] = {c.id: {"type": "boolean", **({"enum": [True]} if c.required else {})}
                                        for c in settings_.consent.categories}
    schemas["ContactForm"]["properties"]["message"]["x-max-length-trimmed"] = settings_.limits.message_max_length
    return document


schema = schemathesis.openapi.from_dict(document_for_this_site())


@pytest.fixture
def api_app(make_app):
    """CSRF off so generated bodies reach validation (with it on, every POST is the 400 form page)."""
    return make_app(WTF_CSRF_ENABLED=False)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=not FULL_RUN)
def test_app_answers_as_documented(case, api_app) -> None:
    # Every other check runs, negative_data_rejection included: a request the document calls invalid must
    # be refused. Not the reverse: the forms rightly refuse some requests a schema cannot call invalid
    # (a contact form without a valid signed start time, an address at a reserved domain such as .example,
    # a consent whose event contradicts its button).
    case.call_and_validate(app=api_app, excluded_checks=[positive_data_acceptance])


def test_every_route_of_the_app_is_documented(make_app) -> None:
    app = make_app()
    routes = {(rule.rule.replace("<", "{").replace(">", "}"), method)
              for rule in app.url_map.iter_rules() if rule.endpoint != "static"
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    document = yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))
    documented = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    assert routes | ALIASES == documented, "document every route in leadform/openapi.yaml"


def test_the_documented_field_caps_are_the_forms_own() -> None:
    from leadform.forms import SUBJECTS

    schemas = yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))["components"]["schemas"]
    contact, checklist = schemas["ContactForm"]["properties"], schemas["ChecklistForm"]["properties"]
    assert contact["name"] == checklist["name"] == {"$ref": "#/components/schemas/Name"}
    assert contact["email"] == checklist["email"] == {"$ref": "#/components/schemas/Email"}
    # the caps the forms enforce (tests/test_input_hardening.py), written out
    assert schemas["Name"]["x-max-length-trimmed"] == 100
    assert schemas["Email"]["x-max-length-trimmed"] == 254
    assert contact["phone"]["x-max-length-trimmed"] == 40
    assert contact["message"]["x-max-length-trimmed"] == 5000  # site_config/site.yml
    assert contact["subject"]["enum"] == list(SUBJECTS)
