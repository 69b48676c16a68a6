"""Keeping client addresses and exception text out of every log.

:class:`LogRedaction` rewrites every log record that could carry a client
address or exception text (a traceback, gunicorn's ``Invalid request from
ip=…``) into one line naming the exception class. Flask's logger takes it in
each application; gunicorn's through ``logger_class`` in
portal/deploy/gunicorn_conf.py.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import sys

_ADDRESS_LIKE = re.compile(r"[0-9A-Fa-f:.]*[:.][0-9A-Fa-f:.]*")


def names_an_address(text: str) -> bool:
    """Whether ``text`` holds an IPv4 or IPv6 address anywhere (a port may follow)."""
    for token in _ADDRESS_LIKE.findall(text):
        for candidate in (token.strip(":."), token.rpartition(":")[0]):
            try:
                ipaddress.ip_address(candidate)
            except ValueError:
                continue
            return True
    return False


class LogRedaction(logging.Filter):
    """Rewrites records that could carry a client address or exception text.

    A record with exception information, a traceback in its text, or
    gunicorn's ``Invalid request from ip=…`` becomes one line naming the
    exception's class; any other record that names an address is withheld
    whole. Messages are never passed through: an exception's text or a
    request line can hold whatever a client sent.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record`` in place when it needs it; never drop it."""
        try:
            text = record.getMessage()
        except (TypeError, ValueError):
            text = str(record.msg)
        failure = record.exc_info[1] if record.exc_info else sys.exception()
        name = type(failure).__name__ if failure is not None else "no exception"
        if record.exc_info or "Traceback" in text:
            _rewrite(record, "failed (details withheld from the log): %s", name)
        elif text.startswith("Invalid request from"):
            _rewrite(record, "invalid request refused: %s", name)
        elif names_an_address(text):
            _rewrite(record, "a message naming a network address was withheld", None)
        return True


def _rewrite(record: logging.LogRecord, message: str, argument: str | None) -> None:
    record.msg = message
    record.args = () if argument is None else (argument,)
    record.exc_info = None
    record.exc_text = None
    record.stack_info = None
