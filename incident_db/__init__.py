"""The shared incident database of verified, anonymised incidents (README.md here)."""
