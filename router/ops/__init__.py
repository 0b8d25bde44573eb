"""Daemon operations: start and stop, the CLI, hot reload, systemd, metrics, tracing, logs.

The top layer: may import every other subpackage; nothing imports it.
"""
