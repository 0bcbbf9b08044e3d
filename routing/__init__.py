"""Routing: the route table, the broker topology and delivery to recipients over kombu.

Entry points (see docs/architecture.md, "Routing"):

- :class:`casebridge.routing.runtime.Routing` builds everything from the settings;
- ``Routing.router().submit(raw, system=, sender=)`` is the inbound pipeline (gateway);
- ``Routing.worker(...).run()`` delivers; ``Routing.outbox()`` serves pull agencies;
- ``Routing.referrals()`` answers where a referral stands; :mod:`.dlq` handles dead letters.
"""
