"""The gateway: casebridge's front door (FastAPI service) and its command line."""
