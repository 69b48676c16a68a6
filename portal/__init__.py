"""Anonymous intake portal (Flask). See the project README."""
