"""``reviewer desk``: the reviewer's work in a browser, served to this computer only.

The desk is a Flask application (app.py) behind a WSGI guard (guard.py) on a
listener bound to 127.0.0.1 (server.py). It works on the same workspace with
the same functions as the command line, and keeps a search index of the
decrypted reports in memory only (index.py): nothing it shows is ever written
to disk in the clear.

This package is imported only when ``reviewer desk`` runs: the other
commands never load a web server or a socket (reviewer_tool/cli.py).
"""
