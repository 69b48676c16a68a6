"""Running a host: configs (templates inside), doctor, host checks, assets, backups."""
