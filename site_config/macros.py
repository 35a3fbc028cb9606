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
