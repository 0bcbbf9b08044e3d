"""casebridge: consent-gated exchange of case data between social-service agencies.

The responsibilities live in sibling folders of the repository (``adapters/``, ``consent/``,
``routing/``, ``canonical_model/``, ``gateway/``) and are imported under this one name, e.g.
``casebridge.consent``; this root package holds only what all of them share: errors, settings
and logging.
"""

__version__ = "0.1.0"
