"""Page components the coach places in Markdown with a macro, e.g. `{{ cookie_table() }}`.

Each factory takes the mkdocs-macros env and returns the macro, so a component
can see the page it is rendered into and the blog's posts.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from mkdocs.utils import get_relative_url

from site_config import load_settings

__all__ = ["latest_posts", "checklist_form", "scorecard", "contact_form", "cookie_table", "retention_table"]


def latest_posts(env) -> Callable[[int], str]:
    def render(count: int = 3) -> str:
        """The newest published posts, as cards linking to each post."""
        blog = env.conf.plugins["material/blog"].blog
        here = env.page.url
        items = []
        for post in blog.posts[:count]:
            date = post.config.date.created
            title = post.meta.get("title") or post.title
            url = get_relative_url(post.url, here)
            items.append(
                f'<li class="coach-post"><a href="{escape(url)}"><span class="coach-post__title">'
                f'{escape(title)}</span></a><time datetime="{date.isoformat()}">'
                f'{date.day} {_MONTHS[date.month - 1]} {date.year}</time>'
                f'<p>{escape(post.meta.get("description", ""))}</p></li>'
            )
        return '<ul class="coach-posts">' + "".join(items) + "</ul>"

    return render


_MONTHS = ["januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus",
           "september", "oktober", "november", "december"]


def checklist_form(env) -> Callable[[str], str]:
    def render(slug: str) -> str:
        """The request form of one checklist, built from the form class that validates it."""
        from site_config.forms_html import checklist_form_html

        return checklist_form_html(load_settings().checklist(slug))

    return render


def scorecard(env) -> Callable[[str], str]:
    def render(slug: str) -> str:
        """The checklist to fill in on the page, scored by the app, from the same YAML as the PDF."""
        from site_config.forms_html import scorecard_form_html

        return scorecard_form_html(load_settings().checklist(slug))

    return render


def contact_form(env) -> Callable[[], str]:
    def render() -> str:
        """The contact form, built from the form class that validates it."""
        from site_config.forms_html import contact_form_html

        return contact_form_html()

    return render


def cookie_table(env) -> Callable[[], str]:
    def render() -> str:
        """The cookie categories and cookies, from the same source as the consent banner."""
        rows = []
        for category in load_settings().consent.categories:
            state = "altijd aan" if category.required else "alleen met je toestemming"
            rows.append(f"### {category.title} ({state})\n\n{category.description}\n\n"
                        "| Naam | Doel | Bewaartermijn |\n| --- | --- | --- |\n")
            rows += [f"| {c.name} | {c.purpose} | {c.duration} |\n" for c in category.cookies]
            rows.append("\n")
        return "".join(rows)

    return render


def retention_table(env) -> Callable[[], str]:
    def render() -> str:
        """How long each kind of data is kept, from the settings the purge job uses."""
        r = load_settings().retention
        days = load_settings().limits.link_valid_days
        return (
            "| Gegevens | Bewaartermijn |\n| --- | --- |\n"
            f"| Aanvraag van een checklist die je niet bevestigt | {r.unconfirmed_lead_days} dagen |\n"
            f"| Persoonlijke downloadlink | {days} dagen geldig |\n"
            "| Bevestigde aanvraag van een checklist | tot je vraagt om ze te wissen |\n"
            "| Je antwoorden als je een checklist op de website invult | niet bewaard: we tellen alleen anoniem "
            "hoe vaak ze ingevuld werd en het gemiddelde per thema |\n"
            "| Je antwoorden als je je persoonlijk rapport aanvraagt | samen met je aanvraag, zoals hierboven |\n"
            f"| Berichten via het contactformulier | {r.contact_message_years} jaar |\n"
            f"| Inhoud van verstuurde e-mails | {r.delivered_mail_body_days} dagen |\n"
            f"| Bewijs van je cookiekeuze (zonder IP-adres) | {r.consent_record_years} jaar |\n"
            f"| Teamronde die je niet bevestigt | {r.unconfirmed_lead_days} dagen |\n"
            f"| Teamronde: naam en e-mailadres van de leidinggevende en de anonieme antwoorden | "
            f"{r.team_round_days} dagen nadat de ronde afsloot |\n"
        )

    return render
