"""'Maak een afspraak': the coach's online agenda when site.yml names one (a link, opened only on a click,
never embedded), else the contact form, where a visitor suggests a moment that reaches the coach."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import smtp_config
from mkdocs.commands.build import build
from mkdocs.config import load_config
from support.html import parse
from support.site_settings import config_copy

import site_config
from leadform import outbox
from leadform.forms import issue_started
from site_config import ConfigError

AGENDA = "https://cal.example.be/an-voorbeeld/kennismaking"


def test_without_an_agenda_the_button_leads_to_the_form_with_a_moment_field(site_pages: dict[str, str]) -> None:
    assert site_config.load_settings().coach.booking_url is None  # the example site.yml has none
    assert '<a class="md-button" href="contact/#afspraak">Maak een afspraak</a>' in site_pages["index.html"]
    contact = site_pages["contact/index.html"]
    assert 'id="afspraak"' in contact
    assert '<label for="moment">Wanneer past een kennismakingsgesprek je? (niet verplicht)</label>' in contact
    assert '<input id="moment" maxlength="200" name="moment" type="text" value="">' in contact
    assert '<select id="subject" name="subject" required>' in contact
    assert [path for path, html in site_pages.items() if 'autocomplete="None"' in html] == []


def test_a_suggested_moment_reaches_the_coach_on_a_line_of_its_own(make_app, smtp_server) -> None:
    app = make_app(WTF_CSRF_ENABLED=False, **smtp_config(smtp_server.port))
    with app.test_request_context():
        started = issue_started(backdate=10)
    response = app.test_client().post("/api/contact", data={
        "name": "Jan", "email": "jan@example.be", "subject": "teamcoaching", "message": "Ons team zoekt begeleiding.",
        "moment": "dinsdagvoormiddag <of na 17 uur>", "privacy": "y", "started": started})
    assert response.status_code == 303
    with app.app_context():
        outbox.deliver_due()
    by_rcpt = {tuple(rcpt): message for rcpt, message in smtp_server.messages}
    to_coach = by_rcpt[(site_config.load_settings().coach.email,)]
    text = to_coach.get_body(("plain",)).get_content()
    assert "Voorkeur voor een gesprek: dinsdagvoormiddag <of na 17 uur>\r\n" in text
    assert text.count("dinsdagvoormiddag") == 1
    assert "dinsdagvoormiddag &lt;of na 17 uur&gt;" in to_coach.get_body(("html",)).get_content()
    assert "dinsdagvoormiddag" not in by_rcpt[("jan@example.be",)].get_body(("plain",)).get_content()


def test_a_moment_too_long_is_refused_in_dutch(make_app) -> None:
    app = make_app(WTF_CSRF_ENABLED=False)
    with app.test_request_context():
        started = issue_started(backdate=10)
    response = app.test_client().post("/api/contact", data={
        "name": "Jan", "email": "jan@example.be", "subject": "andere", "message": "Hallo", "moment": "x" * 201,
        "privacy": "y", "started": started})
    assert response.status_code == 400
    assert "Hou het korter: een dag en een dagdeel volstaan." in response.get_data(as_text=True)


@pytest.fixture
def with_agenda(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """The settings of a coach who filled in booking_url, for everything that calls load_settings()."""
    config = config_copy(tmp_path, lambda text: text.replace('booking_url: ""', f'booking_url: "{AGENDA}"'))
    monkeypatch.setenv("SITE_CONFIG_DIR", str(config))
    settings = site_config.load_settings()
    assert settings.coach.booking_url == AGENDA
    return settings


def test_with_an_agenda_the_button_opens_it_only_on_a_click(with_agenda, project_copy: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project_copy)
    config = load_config("mkdocs.yml", site_dir=str(project_copy / "site"))
    config.plugins.on_startup(command="build", dirty=False)
    build(config)  # strict: the build's own checks refuse any request to another host
    config.plugins.on_shutdown()
    home = (project_copy / "site" / "index.html").read_text(encoding="utf-8")
    contact = (project_copy / "site" / "contact" / "index.html").read_text(encoding="utf-8")
    assert f'<a class="md-button" href="{AGENDA}">Maak een afspraak</a>' in home
    assert f'href="{AGENDA}"' in contact and "Kies een moment in mijn agenda" in contact
    for page in (home, contact):
        links = parse(page).links
        assert AGENDA in links or page is home
        assert "<iframe" not in page and "cal.example.be/" not in page.replace(f'href="{AGENDA}"', "")


def test_an_agenda_address_must_be_https() -> None:
    text = (site_config.CONFIG_DIR / "site.yml").read_text(encoding="utf-8")
    assert 'booking_url: ""' in text
    with pytest.raises(ConfigError, match="booking_url: een adres dat begint met https://"):
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            Path(folder, "checklists").mkdir()
            for file in (site_config.CONFIG_DIR / "checklists").glob("*.yml"):
                Path(folder, "checklists", file.name).write_text(file.read_text(encoding="utf-8"), encoding="utf-8")
            Path(folder, "site.yml").write_text(text.replace('booking_url: ""', 'booking_url: "http://cal.example.be/an"'),
                                                encoding="utf-8")
            site_config._load(Path(folder))
