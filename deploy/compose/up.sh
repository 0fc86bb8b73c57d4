#!/usr/bin/env bash
# One command for a perfleet cluster in containers on this machine:
#   deploy/compose/up.sh
# builds the image (deploy/build-image.sh), makes a CA and certificates with
# `perfleet tls`, a gossip key and per-node at-rest keyrings under
# deploy/compose/.state, starts 3 coordinators, 3 agents and a simulated model
# server, and waits until the cluster has a leader and all agents are alive.
# Then it prints the environment for the CLI. deploy/compose/down.sh removes
# everything again.
#
# Settings (environment): PERFLEET_IMAGE (default perfleet:dev; set
# PERFLEET_SKIP_BUILD=1 to use an image already built), PERFLEET_NET (the
# first three octets of the private network, default 10.213.57),
# PERFLEET_STATE (default deploy/compose/.state), PERFLEET_PORT_PREFIX (the
# published ports are 127.0.0.1:<prefix>233-235 and <prefix>443; default 27),
# COMPOSE_PROJECT_NAME (default perfleet; also the containers' name prefix).
# It uses docker-compose or, without it, the docker compose plugin. If the
# cluster does not come up, the containers are left running for a look
# (docker logs perfleet-c1); down.sh removes them.
set -euo pipefail
cd "$(dirname "$0")"
COMPOSE_DIR=$PWD
ROOT=$(cd ../.. && pwd)
export PERFLEET_IMAGE=${PERFLEET_IMAGE:-perfleet:dev}
export PERFLEET_NET=${PERFLEET_NET:-10.213.57}
export PERFLEET_STATE=${PERFLEET_STATE:-$COMPOSE_DIR/.state}
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-perfleet}
export PERFLEET_PORT_PREFIX=${PERFLEET_PORT_PREFIX:-27}
export CGO_CFLAGS=-Wno-deprecated-declarations
PERFLEET=$ROOT/bin/perfleet
# shellcheck source=lib.sh
. "$COMPOSE_DIR/lib.sh"

echo "== building bin/perfleet and the image $PERFLEET_IMAGE"
(cd "$ROOT" && go build -o bin/perfleet ./coordinator)
if [ "${PERFLEET_SKIP_BUILD:-}" != 1 ]; then "$ROOT/deploy/build-image.sh" "$PERFLEET_IMAGE"; fi

certs=$PERFLEET_STATE/certs
if [ ! -f "$certs/gossip.key" ]; then
  echo "== certificates (perfleet tls), gossip key and at-rest keyrings in $PERFLEET_STATE"
  rm -rf "$PERFLEET_STATE/ca" "$certs" # what an interrupted earlier run left
  mkdir -p "$PERFLEET_STATE/ca" "$certs" "$PERFLEET_STATE/results"
  ca=$PERFLEET_STATE/ca
  "$PERFLEET" tls ca create --dir "$ca" >/dev/null
  cp "$ca/perfleet-ca.pem" "$certs/perfleet-ca.pem"
  mk() { # role name ip
    local tmp; tmp=$(mktemp -d "$PERFLEET_STATE/tmp.XXXXXX")
    "$PERFLEET" tls cert create "--$1" --ca "$ca/perfleet-ca.pem" --key "$ca/perfleet-ca-key.pem" \
      --dir "$tmp" ${3:+--dns "$2" --ip "$3"} >/dev/null
    mv "$tmp"/*-key.pem "$certs/$2-key.pem"; mv "$tmp"/*.pem "$certs/$2.pem"; rmdir "$tmp"
  }
  for i in 1 2 3; do
    mk server "c$i" "$PERFLEET_NET.1$i"
    mk agent "a$i" "$PERFLEET_NET.2$i"
    "$PERFLEET" operator encryption-key create --file "$certs/c$i-keyring.json" >/dev/null
  done
  mk client client
  head -c 32 /dev/urandom | base64 >"$certs/gossip.key"
fi
# The containers run as an unprivileged user: 65532 when started by root
# (the files are handed to it), else the caller's own user.
if [ "$(id -u)" = 0 ]; then
  export PERFLEET_UID=65532 PERFLEET_GID=65532
  chown -R 65532:65532 "$certs" "$PERFLEET_STATE/results"
else
  export PERFLEET_UID=$(id -u) PERFLEET_GID=$(id -g)
fi

cat >"$PERFLEET_STATE/env" <<ENV
export PERFLEET_ADDR=127.0.0.1:${PERFLEET_PORT_PREFIX}233,127.0.0.1:${PERFLEET_PORT_PREFIX}234,127.0.0.1:${PERFLEET_PORT_PREFIX}235
export PERFLEET_CACERT=$certs/perfleet-ca.pem
export PERFLEET_CLIENT_CERT=$certs/client.pem
export PERFLEET_CLIENT_KEY=$certs/client-key.pem
ENV
# shellcheck disable=SC1091
. "$PERFLEET_STATE/env"

echo "== compose up (project $COMPOSE_PROJECT_NAME, network $PERFLEET_NET.0/24)"
compose -f "$COMPOSE_DIR/docker-compose.yml" up -d --no-build

echo "== waiting for a leader and three alive agents"
ok=
for _ in $(seq 1 120); do
  if "$PERFLEET" operator raft list-peers --timeout 2s 2>/dev/null | grep -q leader &&
     [ "$("$PERFLEET" agent list --status alive --timeout 2s 2>/dev/null | grep -c true)" = 3 ]; then ok=1; break; fi
  sleep 1
done
if [ -z "$ok" ]; then
  echo "the cluster did not come up in 120 s; container logs:" >&2
  compose -f "$COMPOSE_DIR/docker-compose.yml" logs --tail 40 >&2
  exit 1
fi
"$PERFLEET" operator raft list-peers
"$PERFLEET" agent list
echo
echo "The cluster is up. For the CLI on this machine:"
echo "  . $PERFLEET_STATE/env"
echo "The model server for benchmark jobs: http://$PERFLEET_NET.30:8000 (model compose-llm)"
echo "Tear it down with deploy/compose/down.sh"
