"""The DPO console: server-rendered pages for data-protection officers and administrators.

:func:`casebridge.gateway.console.app.mount_console` adds the pages under ``/console`` to a
gateway app (see docs/console.md).
"""
