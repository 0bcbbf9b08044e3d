"""Consent: who may see what. Default deny; every decision audited."""
