#!/usr/bin/env bash
# Generate the secret files deploy/compose.yaml reads (random passwords, the Erlang cookie, and a
# self-signed server certificate and client CA for a trial run). In a real installation put the
# agency CA's certificate in client_ca and the server certificate of your PKI in tls_*; keep the
# directory readable by the deploying user only. Existing files are kept (rerun = no rotation).
set -euo pipefail
cd "$(dirname "$0")"
umask 077

rand() { openssl rand -hex "${1:-24}"; }
keep() { [ -s "$1" ]; }
write() { keep "$1" || printf '%s' "$2" > "$1"; }

write postgres_password "$(rand)"
write rabbitmq_user casebridge
write rabbitmq_password "$(rand)"
write rabbitmq_erlang_cookie "$(rand 32)"
write redis_password "$(rand)"

pg=$(cat postgres_password)
mq_user=$(cat rabbitmq_user)
mq=$(cat rabbitmq_password)
write casebridge_database_url "postgresql+psycopg://casebridge:${pg}@postgres:5432/casebridge"
# A failover list: kombu connects to the next node when one is down.
write casebridge_broker_url "amqp://${mq_user}:${mq}@rabbitmq-1:5672//;amqp://${mq_user}:${mq}@rabbitmq-2:5672//;amqp://${mq_user}:${mq}@rabbitmq-3:5672//"
write casebridge_rate_limit_storage "redis://:$(cat redis_password)@redis:6379/0"

# One Standard Webhooks signing secret per push recipient (32 random bytes); hand each agency
# its own file's content over a secure channel so that it can verify casebridge's deliveries.
signing() { write "$1" "whsec_$(openssl rand -base64 32)"; }
signing signing_jobcenter_duisburg
signing signing_sozialamt_duisburg
signing signing_jugendamt_duisburg
signing signing_schuldnerberatung_caritas_du

if ! keep tls_certificate; then
  openssl req -x509 -newkey rsa:3072 -nodes -days 30 -subj "/CN=casebridge.localhost" \
    -addext "subjectAltName=DNS:casebridge.localhost,DNS:localhost" \
    -keyout tls_private_key -out tls_certificate 2>/dev/null
fi
if ! keep client_ca; then
  openssl req -x509 -newkey rsa:3072 -nodes -days 30 -subj "/CN=casebridge trial agency CA" \
    -keyout client_ca.key -out client_ca 2>/dev/null
fi
# The files are bind-mounted into containers that run as non-root users (casebridge uid 10001,
# nginx uid 101), so they must be readable by any uid; the directory (0700) keeps other users of
# this host out.
find . -maxdepth 1 -type f ! -name generate.sh ! -name .gitignore ! -name '*.key' -exec chmod 0444 {} +
chmod 0700 .
echo "secrets in $(pwd): $(ls | grep -v -e generate.sh | tr '\n' ' ')"
