#!/usr/bin/env bash
# Remove the compose cluster: containers, network, data volumes and the
# certificates and results under deploy/compose/.state.
set -uo pipefail
cd "$(dirname "$0")"
export PERFLEET_NET=${PERFLEET_NET:-10.213.57}
export PERFLEET_STATE=${PERFLEET_STATE:-$PWD/.state}
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-perfleet}
# shellcheck source=lib.sh
. ./lib.sh
compose -f docker-compose.yml down -v --remove-orphans --timeout 5
rm -rf "$PERFLEET_STATE"
