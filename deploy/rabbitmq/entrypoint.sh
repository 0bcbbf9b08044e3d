#!/bin/sh
# Wraps the image's entrypoint: installs the shared Erlang cookie and the casebridge broker
# credentials from compose secrets before RabbitMQ starts, so none of them is in the environment.
set -eu

install -o rabbitmq -g rabbitmq -m 0600 /run/secrets/rabbitmq_erlang_cookie /var/lib/rabbitmq/.erlang.cookie
# The CLI tools (the healthcheck) run as root and need the same cookie.
install -o root -g root -m 0600 /run/secrets/rabbitmq_erlang_cookie /root/.erlang.cookie

umask 077
{
  printf 'default_user = %s\n' "$(cat /run/secrets/rabbitmq_user)"
  printf 'default_pass = %s\n' "$(cat /run/secrets/rabbitmq_password)"
} > /etc/rabbitmq/conf.d/20-credentials.conf
chown rabbitmq:rabbitmq /etc/rabbitmq/conf.d/20-credentials.conf

exec docker-entrypoint.sh rabbitmq-server
