"""The Jinja environment of the HTML reports (``geo_protect/outputs/report_templates``)."""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, PackageLoader, select_autoescape

__all__ = ["environment"]


@cache
def environment() -> Environment:
    """The reports' Jinja environment, built once (it caches the compiled templates)."""
    return Environment(
        loader=PackageLoader("geo_protect.outputs", "report_templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
