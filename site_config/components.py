"""Page components the coach places in Markdown with a macro, e.g. `{{ cookie_table() }}`.

Each factory takes the mkdocs-macros env and returns the macro, so a component
can see the page it is rendered into and the blog's posts.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from mkdocs.utils import get_relative_url

from site_config import load_settings
from site_config.images import picture_for

__all__ = ["latest_posts", "checklist_form", "scorecard", "contact_form", "cookie_table", "retention_table",
           "coach_profile", "testimonials", "client_logos", "contact_button", "next_step"]


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


def _root(env) -> str:
    """The way from the page being rendered to the site root, e.g. '../'."""
    return get_relative_url(".", env.page.url).rstrip("/") + "/"


def coach_profile(env) -> Callable[[], str]:
    def render() -> str:
        """Portrait, bio, years of practice, qualifications and LinkedIn: each only when filled in."""
        coach = load_settings().coach
        parts = []
        if coach.portrait:
            parts.append(picture_for(coach.portrait.file, "portrait").html(
                _root(env), coach.portrait.alt, "(max-width: 44.9em) 60vw, 16rem", "coach-profile__photo"))
        text = [f'<p class="coach-profile__name"><strong>{escape(coach.name)}</strong><br>{escape(coach.role)}'
                f" · {escape(coach.company)}</p>"]
        if coach.bio:
            text.append(f"<p>{escape(coach.bio)}</p>")
        facts = []
        if coach.years_of_practice():
            facts.append(f"{coach.years_of_practice()} jaar ervaring als coach")
        facts += coach.qualifications
        if facts:
            text.append('<ul class="coach-profile__facts">' + "".join(f"<li>{escape(f)}</li>" for f in facts)
                        + "</ul>")
        if coach.linkedin:
            text.append(f'<p><a class="md-button" href="{escape(coach.linkedin)}" rel="me noopener">'
                        f"Mijn profiel op LinkedIn</a></p>")
        parts.append('<div class="coach-profile__text">' + "".join(text) + "</div>")
        return '<div class="coach-profile">' + "".join(parts) + "</div>"

    return render


def testimonials(env) -> Callable[[str], str]:
    def render(title: str = "Wat klanten zeggen") -> str:
        """The testimonials from site.yml, as quotes with name, role and organisation; nothing when none."""
        items = []
        for t in load_settings().testimonials:
            photo = (picture_for(t.photo.file, "photo").html(_root(env), t.photo.alt, "3rem", "coach-quote__photo")
                     if t.photo else "")
            items.append(f'<figure class="coach-quote"><blockquote><p>{escape(t.quote)}</p></blockquote>'
                         f"<figcaption>{photo}<span><strong>{escape(t.name)}</strong><br>"
                         f"{escape(t.role)}, {escape(t.organisation)}</span></figcaption></figure>")
        if not items:
            return ""
        return (f'<section class="coach-quotes" aria-label="{escape(title)}"><h2>{escape(title)}</h2>'
                f'<div class="coach-quotes__grid">{"".join(items)}</div></section>')

    return render


def client_logos(env) -> Callable[[str], str]:
    def render(title: str = "Organisaties waarmee ik werkte") -> str:
        """The clients' logos from site.yml; nothing when none."""
        clients = load_settings().clients
        if not clients:
            return ""
        logos = "".join(f"<li>{picture_for(c.logo.file, 'logo').html(_root(env), c.logo.alt, '8rem')}</li>"
                        for c in clients)
        return (f'<section class="coach-clients" aria-label="{escape(title)}"><h2>{escape(title)}</h2>'
                f'<ul class="coach-clients__list">{logos}</ul></section>')

    return render


def contact_button(env) -> Callable[[str], str]:
    def render(label: str = "Neem contact op") -> str:
        """A clear button to the contact page."""
        url = get_relative_url("contact/", env.page.url)
        return (f'<p class="coach-actions"><a class="md-button md-button--primary" href="{escape(url)}">'
                f"{escape(label)}</a></p>")

    return render


def next_step(env) -> Callable[[str], str]:
    def render(checklist: str = "teams") -> str:
        """A service page's last word: a button to make an appointment (the coach's booking link, else the
        contact page's appointment section) and one to the fitting checklist."""
        item = load_settings().checklist(checklist)
        coach = load_settings().coach
        contact = coach.booking_url or get_relative_url("contact/", env.page.url) + "#afspraak"
        page = get_relative_url(f"checklists/{item.slug}/", env.page.url)
        return (f'<p class="coach-actions"><a class="md-button md-button--primary" href="{escape(contact)}">'
                f'Plan een kennismaking</a> <a class="md-button" href="{escape(page)}">'
                f"Gratis checklist {escape(item.slug)}</a></p>")

    return render
