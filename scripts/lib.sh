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
