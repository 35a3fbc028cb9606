"""mkdocs-macros entry point: exposes site_config facts and components to pages.

mkdocs-macros loads this file by path, so it only wires names; the work lives in
`site_config.components`.
"""

from site_config import components, load_settings


def define_env(env) -> None:
    settings = load_settings()
    env.variables["site"] = settings.site
    env.variables["coach"] = settings.coach
    env.variables["settings"] = settings
    for name in components.__all__:
        env.macro(getattr(components, name)(env), name)


def on_pre_page_macros(env) -> None:
    """Leave pages without Jinja markers alone: compiling every post as a template cost more than a
    second per build with 500 posts, for nothing (bench/build_cost.py). A page may still say
    `render_macros: false` itself."""
    page = env.page
    if page.meta.get("render_macros") is None and not env.has_j2(env.markdown + str(page.title or "")):
        page.meta["render_macros"] = False
