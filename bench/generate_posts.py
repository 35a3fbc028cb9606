"""Make a copy of the site whose blog holds N posts of about 600 Dutch-ish words.

Why: the issue "Performance" asks how the site behaves with 10 and with 500 posts; the real blog
has one. Posts pass the build checks (title, description, date with seconds, author coach,
allowed categories, `<!-- more -->`), so the copy builds with --strict like the real site.

    python bench/generate_posts.py 500 /tmp/blog500    # prints the project folder
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from site_config.new_post import allowed_categories, slugify  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
POSTS = Path("docs/blog/posts")

NOUNS = ("team", "klant", "leider", "samenwerking", "verandering", "gesprek", "vertrouwen", "afspraak",
         "doel", "overleg", "feedback", "cultuur", "organisatie", "medewerker", "dienst", "proces",
         "rol", "verantwoordelijkheid", "energie", "kwaliteit", "ervaring", "aanpak", "oefening",
         "inzicht", "conflict", "waarde", "visie", "structuur", "beslissing", "groei", "weerstand",
         "binnendienst", "verkoop", "opleiding", "coaching", "klantbeleving", "vergadering", "project")
ADJECTIVES = ("sterk", "open", "eerlijk", "concreet", "nieuw", "gezamenlijk", "helder", "moeilijk",
              "positief", "kritisch", "klantgericht", "wendbaar", "duurzaam", "stil", "warm", "nieuwsgierig")
VERBS = ("bouwen", "bespreken", "verbeteren", "versterken", "ontdekken", "leren", "veranderen",
         "begeleiden", "luisteren", "vertrouwen", "afspreken", "delen", "kiezen", "groeien", "vieren")
GLUE = ("en", "maar", "want", "dus", "omdat", "terwijl", "zodat", "wanneer", "ook", "vaak", "soms",
        "samen", "elke dag", "in de praktijk", "voor de klant", "binnen het team", "met elkaar")
SUBJECTS = ("Het team", "De leider", "Elke medewerker", "De klant", "Een coach", "De organisatie",
            "Wie samenwerkt", "Een goed gesprek", "De binnendienst", "Het management")
TAGS = ("teamcoaching", "leiderschap", "feedback", "klantgerichtheid", "verandering", "samenwerking")
# Compounds built from these give a vocabulary of thousands of words, so the search index
# compresses about as well as real prose does, not like a 100-word list repeated.
PREFIXES = ("ver", "be", "ont", "ge", "her", "mede", "samen", "klant", "team", "door", "onder", "over")
ROOTS = ("werk", "spreek", "denk", "leid", "stuur", "bouw", "groei", "kijk", "luister", "houd", "zet",
         "neem", "geef", "vraag", "zoek", "draag", "wend", "plan", "meet", "leer", "toets", "deel", "kies",
         "volg", "maak", "breng", "trek", "voel", "sta", "loop", "schrijf", "lees", "stel", "wijs", "vind")
SUFFIXES = ("ing", "heid", "schap", "lijk", "baar", "en", "er", "te", "sel", "nis", "")


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(SUBJECTS), "wil", rng.choice(ADJECTIVES), rng.choice(NOUNS), rng.choice(VERBS),
             rng.choice(GLUE), rng.choice(ADJECTIVES), rng.choice(NOUNS)]
    words += rng.sample(NOUNS + GLUE + ADJECTIVES, rng.randint(1, 4))
    words += [rng.choice(PREFIXES) + rng.choice(ROOTS) + rng.choice(SUFFIXES) for _ in range(rng.randint(1, 4))]
    return " ".join(words) + "."


def _paragraph(rng: random.Random, words: int) -> tuple[str, int]:
    sentences: list[str] = []
    count = 0
    while count < words:
        sentence = _sentence(rng)
        sentences.append(sentence)
        count += len(sentence.split())
    return " ".join(sentences), count


def render_post(index: int, rng: random.Random, categories: list[str], created: dt.datetime) -> tuple[str, str]:
    """One post, (file name, text); titles are unique so each post is findable by its title."""
    title = (f"{rng.choice(ADJECTIVES).capitalize()} {rng.choice(NOUNS)} en "
             f"{rng.choice(NOUNS)} {rng.choice(VERBS)} (deel {index})")
    slug = slugify(title)
    meta = {
        "title": title,
        "description": _paragraph(rng, 20)[0][:150].rsplit(" ", 1)[0] + ".",
        "date": {"created": created},
        "authors": ["coach"],
        "categories": rng.sample(categories, rng.randint(1, 2)),
        "tags": rng.sample(TAGS, 2),
        "slug": slug,
    }
    parts = [_paragraph(rng, 50)[0], "<!-- more -->"]
    words = 50
    section = 0
    while words < 590:
        if words > 150 * (section + 1):
            section += 1
            parts.append(f"## {rng.choice(ADJECTIVES).capitalize()} {rng.choice(NOUNS)} {rng.choice(VERBS)}")
            words += 3
        text, count = _paragraph(rng, min(70, 600 - words))
        parts.append(text)
        words += count
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False)
    return f"{created:%Y-%m-%d}-{slug}.md", f"---\n{front}---\n\n" + "\n\n".join(parts) + "\n"


def make_project(dest: Path, posts: int, seed: int = 1) -> Path:
    """Copy docs/ and mkdocs.yml to dest, symlink site_config, and fill the blog up to `posts` posts.

    Like tests/conftest.py's project_copy: the Python package stays shared, the sources are a copy.
    """
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    shutil.copytree(ROOT / "docs", dest / "docs")
    shutil.copy(ROOT / "mkdocs.yml", dest / "mkdocs.yml")
    (dest / "site_config").symlink_to(ROOT / "site_config")
    post_dir = dest / POSTS
    existing = len(list(post_dir.glob("*.md")))
    categories = allowed_categories(dest / "mkdocs.yml")
    rng = random.Random(seed)
    start = dt.datetime(2025, 6, 2, 9, 30, 15)
    for i in range(1, max(posts - existing, 0) + 1):
        created = start - dt.timedelta(days=3 * i, minutes=7 * i, seconds=i % 60)
        name, text = render_post(i, rng, categories, created)
        (post_dir / name).write_text(text, encoding="utf-8")
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("posts", type=int, help="number of posts the blog holds in total (real ones count)")
    parser.add_argument("dest", type=Path, help="folder for the project copy (replaced if it exists)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(make_project(args.dest, args.posts, args.seed))


if __name__ == "__main__":
    main()
