"""The gateway's HTTP API: one router module per resource, mounted by the app factory."""
