"""The offline reviewer workstation tool. See the project README."""
