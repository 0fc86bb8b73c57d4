#!/usr/bin/env bash
# Remove the compose cluster: containers, network, data volumes and the
# certificates and results under deploy/compose/.state.
set -uo pipefail
cd "$(dirname "$0")"
export PERFLEET_NET=${PERFLEET_NET:-10.213.57}
export PERFLEET_STATE=${PERFLEET_STATE:-$PWD/.state}
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-perfleet}
# compose runs docker-compose (v1) or the docker compose plugin (v2).
compose() {
  if command -v docker-compose >/dev/null 2>&1; then docker-compose "$@"; else docker compose "$@"; fi
}
compose -f docker-compose.yml down -v --remove-orphans --timeout 5
rm -rf "$PERFLEET_STATE"
