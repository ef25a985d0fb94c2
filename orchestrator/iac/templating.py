"""The Jinja2 environment for everything rendered from `templates/` (Pulumi programs, reports).

Undefined names raise instead of rendering empty, so a template that drifts from the values
it is given fails its tests rather than producing a program that declares the wrong thing.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Undefined,
    select_autoescape,
)

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@cache
def environment() -> Environment:
    # HTML pages escape what they are given; Python and YAML templates write literals through `py`.
    autoescape = select_autoescape(enabled_extensions=("html.j2",), default_for_string=False, default=False)
    # The second loader takes an absolute path: a provider's own Pulumi template, wherever its package is.
    loader = ChoiceLoader([FileSystemLoader(TEMPLATES), FileSystemLoader("/")])
    templates = Environment(loader=loader, undefined=StrictUndefined, keep_trailing_newline=True, autoescape=autoescape)
    templates.filters["py"] = python_literal
    return templates


def python_literal(value: Any) -> str:
    """`value` as Python source: strings quoted and escaped, dicts and lists as written.

    `repr` alone would print an undefined value as `Undefined`; this raises instead.
    """
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    return repr(value)
