"""Storage: tables and migrations, the blob store, the runtime store, retention, inbox bundles."""
