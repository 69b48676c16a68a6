"""Error pages that cannot raise.

If an application's error template fails, a fixed plain-text 500 goes out
instead, and only the exception's class is logged.
"""

from __future__ import annotations

from flask import Response, current_app, render_template

#: said instead of an error page that could not be made
LAST_RESORT = (
    "Something went wrong on our side, and what you sent may or may not have been kept. "
    "Please try again later.\n"
)


def error_page(status: int, message: str, template: str = "error.html") -> Response:
    """The application's ``template`` for ``status``; if even that fails, a plain-text 500."""
    try:
        return Response(render_template(template, status=status, message=message), status)
    except Exception as failure:  # the page of last resort must not fail, whatever broke
        current_app.logger.error("the error page failed: %s", type(failure).__name__)
        return Response(LAST_RESORT, 500, mimetype="text/plain")
