"""The one source of truth that the site build and the lead-capture app share.

`load_settings()` reads `site.yml` and the checklist files once, validates them
(see `schema.py`) and returns frozen dataclasses, so neither half can drift
from the other or change a setting at run time.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

from site_config.schema import ConfigError, optional_image, placeholder_lines, read_yaml, require

__all__ = ["ConfigError", "Settings", "load_settings", "CONFIG_DIR"]

CONFIG_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Address:
    street: str
    postcode: str
    city: str
    country: str


@dataclass(frozen=True)
class Social:
    name: str
    url: str


@dataclass(frozen=True)
class Photo:
    """A picture the coach put in site_config/images/, with its description for screen readers."""

    file: Path
    alt: str


@dataclass(frozen=True)
class Testimonial:
    quote: str
    name: str
    role: str
    organisation: str
    photo: Photo | None = None


@dataclass(frozen=True)
class Client:
    name: str
    logo: Photo


@dataclass(frozen=True)
class Coach:
    name: str
    role: str
    company: str
    company_number: str
    vat: str
    email: str
    phone: str
    address: Address
    socials: tuple[Social, ...]
    portrait: Photo | None = None
    bio: str = ""
    qualifications: tuple[str, ...] = ()
    practice_since: int | None = None

    @property
    def phone_uri(self) -> str:
        """The phone number for a tap-to-call link: digits and a leading +."""
        return "".join(ch for ch in self.phone if ch.isdigit() or ch == "+")

    @property
    def linkedin(self) -> str:
        return next((s.url for s in self.socials if s.name.lower() == "linkedin"), "")

    def years_of_practice(self, today: date | None = None) -> int | None:
        return (today or date.today()).year - self.practice_since if self.practice_since else None
    booking_url: str | None = None   # the coach's online agenda; None: the contact form takes the request


@dataclass(frozen=True)
class Site:
    url: str
    name: str
    description: str


@dataclass(frozen=True)
class ScalePoint:
    score: int
    label: str


@dataclass(frozen=True)
class Advice:
    low: str
    middle: str
    high: str


@dataclass(frozen=True)
class Dimension:
    id: str
    title: str
    statements: tuple[str, ...]
    advice: Advice


@dataclass(frozen=True)
class Checklist:
    slug: str
    title: str
    subtitle: str
    tagline: str
    filename: str
    introduction: str
    scale: tuple[ScalePoint, ...]
    low_below: float
    high_from: float
    dimensions: tuple[Dimension, ...]
    closing: str

    @property
    def statements(self) -> tuple[str, ...]:
        return tuple(s for d in self.dimensions for s in d.statements)

    def level(self, average: float) -> str:
        """Which advice applies to a dimension's average score."""
        if average < self.low_below:
            return "low"
        return "high" if average >= self.high_from else "middle"


@dataclass(frozen=True)
class Cookie:
    name: str
    purpose: str
    duration: str


@dataclass(frozen=True)
class CookieCategory:
    id: str
    title: str
    required: bool
    description: str
    cookies: tuple[Cookie, ...]


@dataclass(frozen=True)
class Consent:
    policy_version: int
    max_age_days: int
    categories: tuple[CookieCategory, ...]

    @property
    def category_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.categories)

    @property
    def optional_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.categories if not c.required)


@dataclass(frozen=True)
class Limits:
    form_per_ip: str
    mails_per_address_per_day: int
    download_per_ip: str
    consent_per_ip: str
    link_valid_days: int
    contact_min_seconds: int
    message_max_length: int
    visitor_mails_per_hour: int         # mails to visitors' addresses the whole site sends; more wait
    visitor_mails_per_day: int
    consent_per_subject: str            # consent records per subject id (one visitor)
    consent_subjects_per_ip: str        # new subject ids per IP (an IPv6 /64 counts as one)
    consent_records_global: str         # consent records for the whole site
    team_round_open_days: int
    team_answers_per_round: int
    team_answers_per_ip: str


@dataclass(frozen=True)
class Retention:
    unconfirmed_lead_days: int
    consent_record_years: int
    delivered_mail_body_days: int
    contact_message_years: int
    page_view_days: int
    team_round_days: int


@dataclass(frozen=True)
class Settings:
    site: Site
    coach: Coach
    checklists: tuple[Checklist, ...]
    consent: Consent
    limits: Limits
    retention: Retention
    testimonials: tuple[Testimonial, ...] = ()
    clients: tuple[Client, ...] = ()
    placeholders: tuple[int, ...] = ()  # numbers of the lines of site.yml still marked VOORBEELD

    def checklist(self, slug: str) -> Checklist:
        for checklist in self.checklists:
            if checklist.slug == slug:
                return checklist
        raise KeyError(slug)

    @property
    def checklist_slugs(self) -> tuple[str, ...]:
        return tuple(c.slug for c in self.checklists)


def _fields(cls: type, data: dict, where: str, **kinds: type) -> dict:
    return {key: require(data, key, kind, where) for key, kind in kinds.items()}


def _load_checklist(path: Path) -> Checklist:
    data = read_yaml(path)
    where = f"site_config/checklists/{path.name}"
    top = _fields(Checklist, data, where, slug=str, title=str, subtitle=str, tagline=str,
                  filename=str, introduction=str, closing=str)
    if top["slug"] != path.stem:
        raise ConfigError(f"{where}: 'slug' moet '{path.stem}' zijn, zoals de bestandsnaam.")
    scale = tuple(
        ScalePoint(**_fields(ScalePoint, p, f"{where} scale", score=int, label=str))
        for p in require(data, "scale", list, where)
    )
    thresholds = require(data, "thresholds", dict, where)
    dimensions = []
    for i, dim in enumerate(require(data, "dimensions", list, where), start=1):
        dwhere = f"{where}, dimensie {i}"
        fields = _fields(Dimension, dim, dwhere, id=str, title=str, statements=list)
        advice = require(dim, "advice", dict, dwhere)
        dimensions.append(Dimension(
            id=fields["id"], title=fields["title"],
            statements=tuple(str(s) for s in fields["statements"]),
            advice=Advice(**_fields(Advice, advice, f"{dwhere} advice", low=str, middle=str, high=str)),
        ))
    if not dimensions:
        raise ConfigError(f"{where}: een checklist heeft minstens één dimensie nodig.")
    return Checklist(
        **top, scale=scale, dimensions=tuple(dimensions),
        low_below=require(thresholds, "low_below", float, f"{where} thresholds"),
        high_from=require(thresholds, "high_from", float, f"{where} thresholds"),
    )


def _load(config_dir: Path) -> Settings:
    data = read_yaml(config_dir / "site.yml")
    where = "site_config/site.yml"
    site = Site(**_fields(Site, require(data, "site", dict, where), f"{where} site",
                          url=str, name=str, description=str))
    c = require(data, "coach", dict, where)
    address = Address(**_fields(Address, require(c, "address", dict, f"{where} coach"),
                                f"{where} coach.address", street=str, postcode=str, city=str, country=str))
    socials = tuple(Social(**_fields(Social, s, f"{where} coach.socials", name=str, url=str))
                    for s in c.get("socials") or [])
    booking_url = str(c.get("booking_url") or "").strip() or None
    if booking_url and not booking_url.startswith("https://"):
        raise ConfigError(f"{where} coach.booking_url: een adres dat begint met https://, of leeg laten.")
    since = c.get("practice_since")
    if since is not None and not (isinstance(since, int) and 1950 <= since <= date.today().year):
        raise ConfigError(f"{where} coach: 'practice_since' moet een jaartal zijn, bijvoorbeeld 2008.")
    qualifications = c.get("qualifications") or []
    if not isinstance(qualifications, list):
        raise ConfigError(f"{where} coach: 'qualifications' moet een lijst zijn (elke regel begint met '- ').")
    coach = Coach(**_fields(Coach, c, f"{where} coach", name=str, role=str, company=str,
                            company_number=str, vat=str, email=str, phone=str),
                  address=address, socials=socials,
                  portrait=_image(optional_image(c, "portrait", config_dir, f"{where} coach")),
                  bio=str(c.get("bio") or "").strip(), qualifications=tuple(str(q) for q in qualifications),
                  practice_since=since, booking_url=booking_url)
    testimonials = []
    for i, t in enumerate(data.get("testimonials") or [], start=1):
        twhere = f"{where} testimonials, getuigenis {i}"
        if not isinstance(t, dict):
            raise ConfigError(f"{twhere}: schrijf quote, name, role en organisation onder elkaar.")
        testimonials.append(Testimonial(**_fields(Testimonial, t, twhere, quote=str, name=str, role=str,
                                                  organisation=str),
                                        photo=_image(optional_image(t, "photo", config_dir, twhere))))
    clients = []
    for i, k in enumerate(data.get("clients") or [], start=1):
        kwhere = f"{where} clients, klant {i}"
        if not isinstance(k, dict):
            raise ConfigError(f"{kwhere}: schrijf name en logo onder elkaar.")
        name = require(k, "name", str, kwhere)
        logo = optional_image({"logo": {"file": k.get("logo"), "alt": f"Logo van {name}"}}
                              if isinstance(k.get("logo"), str) else k, "logo", config_dir, kwhere)
        if logo is None:
            raise ConfigError(f"{kwhere}: 'logo' ontbreekt (een bestand in site_config/images/).")
        clients.append(Client(name=name, logo=_image(logo)))
    checklists = tuple(_load_checklist(config_dir / "checklists" / f"{slug}.yml")
                       for slug in require(data, "checklists", list, where))
    cons = require(data, "consent", dict, where)
    categories = []
    for cat in require(cons, "categories", list, f"{where} consent"):
        cwhere = f"{where} consent.categories"
        fields = _fields(CookieCategory, cat, cwhere, id=str, title=str, description=str)
        cookies = tuple(Cookie(**_fields(Cookie, k, cwhere, name=str, purpose=str, duration=str))
                        for k in cat.get("cookies") or [])
        categories.append(CookieCategory(**fields, required=bool(cat.get("required")), cookies=cookies))
    consent = Consent(
        policy_version=require(cons, "policy_version", int, f"{where} consent"),
        max_age_days=require(cons, "max_age_days", int, f"{where} consent"),
        categories=tuple(categories),
    )
    if "necessary" not in consent.category_ids:
        raise ConfigError(f"{where}: de cookiecategorie 'necessary' is verplicht.")
    lim = require(data, "limits", dict, where)
    limits = Limits(**_fields(Limits, lim, f"{where} limits", form_per_ip=str,
                              mails_per_address_per_day=int, download_per_ip=str, consent_per_ip=str,
                              link_valid_days=int, contact_min_seconds=int, message_max_length=int,
                              visitor_mails_per_hour=int, visitor_mails_per_day=int, consent_per_subject=str,
                              consent_subjects_per_ip=str, consent_records_global=str,
                              team_round_open_days=int, team_answers_per_round=int, team_answers_per_ip=str))
    ret = require(data, "retention", dict, where)
    retention = Retention(**_fields(Retention, ret, f"{where} retention", unconfirmed_lead_days=int,
                                    consent_record_years=int, delivered_mail_body_days=int,
                                    contact_message_years=int, page_view_days=int, team_round_days=int))
    return Settings(site=site, coach=coach, checklists=checklists, consent=consent,
                    limits=limits, retention=retention, testimonials=tuple(testimonials), clients=tuple(clients),
                    placeholders=tuple(placeholder_lines(config_dir / "site.yml")))


def _image(found: tuple[Path, str] | None) -> Photo | None:
    return Photo(file=found[0], alt=found[1]) if found else None


def load_settings(config_dir: Path | None = None) -> Settings:
    """Read and validate the shared settings once per process. SITE_CONFIG_DIR names another folder with a
    site.yml, checklists/ and images/ (a test builds the site with other facts that way)."""
    return _load_cached(Path(config_dir or os.environ.get("SITE_CONFIG_DIR") or CONFIG_DIR))


@cache
def _load_cached(config_dir: Path) -> Settings:
    return _load(config_dir)


def fingerprint(*parts: str) -> str:
    """Short stable hash, e.g. of the consent banner text shown to a visitor."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]
