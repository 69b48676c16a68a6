"""Hardening shared by every Flask application of the project.

The portal's intake and sync API use it today; the members' service and the
reviewer desk are built on it too, so that the three answer alike:

* :mod:`web_hardening.headers`: the CSP as data and the headers every response
  carries, with the document-only ones left off static files;
* :mod:`web_hardening.routing`: a router that never redirects, and redirects
  cut down to a path on the same site;
* :mod:`web_hardening.errors`: an error page that cannot raise;
* :mod:`web_hardening.logs`: the log filter that keeps client addresses and
  exception text out of every log.

Nothing here knows about reports: each application passes its own policy,
templates and settings.
"""
