"""``python -m casebridge`` runs the command line."""

from casebridge.gateway.cli import main

main()
