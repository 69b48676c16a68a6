"""The operator's ``portal`` command and its subcommands (entry point: ``portal.cli.main``)."""
