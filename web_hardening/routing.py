"""A router that never redirects, and redirects that cannot leave the site.

No redirect is ever built from the request's ``Host`` header: werkzeug
answers ``/static//x`` (merged slashes), a missing trailing slash and a
default-valued URL with a 308 to an absolute URL built from that header, which
anyone can forge. With :class:`RedirectFreeMap` they are 404s, and any
``Location`` that names a host is cut down to its path before it leaves
(:func:`same_origin_location`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import Flask
from werkzeug.routing import Map


class RedirectFreeMap(Map):
    """A URL map whose router never redirects."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.update(strict_slashes=False, merge_slashes=False, redirect_defaults=False)
        super().__init__(*args, **kwargs)


class HardenedFlask(Flask):
    """Flask with the :class:`RedirectFreeMap` router (it must be chosen before the first rule)."""

    url_map_class = RedirectFreeMap


def same_origin_location(location: str) -> str:
    """``location`` without scheme or host: a redirect can only stay on this site."""
    parts = urlsplit(location)
    path = "/" + parts.path.lstrip("/\\")  # never "//host": browsers read that as another site
    return urlunsplit(("", "", path, parts.query, parts.fragment))
