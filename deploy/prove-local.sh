#!/usr/bin/env bash
# Prove the production topology against this machine's RabbitMQ and PostgreSQL (see
# deploy/prove_local.py): two gateways and two workers as processes, production settings, the demo
# traffic over HTTP, deliveries and the audit chain checked, everything removed afterwards.
# Needs rabbitmqctl, a Redis (PROVE_REDIS_URL, default redis://127.0.0.1:6379/0) and a PostgreSQL
# superuser reachable as PROVE_PG_ADMIN (libpq conninfo,
# default "host=127.0.0.1 port=5432 user=postgres dbname=test").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-python3}
exec "$python" "$here/prove_local.py" "$@"
