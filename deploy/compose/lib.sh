# Sourced by up.sh, down.sh and e2e.sh.

# compose runs docker-compose (v1) or the docker compose plugin (v2).
compose() {
  if command -v docker-compose >/dev/null 2>&1; then docker-compose "$@"; else docker compose "$@"; fi
}
