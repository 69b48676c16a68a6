"""The shared incident database. See the project README."""
