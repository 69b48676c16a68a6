"""The web application: intake, follow-up, resumable sending, sync API, pages, scripts."""
