#!/bin/sh
# Local signed apt repository holding the Grafana test double's `grafana` .deb,
# laid out like apt.grafana.com (deb <url> stable main), for the grafana role's tests.
#
#   tests/apt_repo/build.sh [build]   build (or keep, when up to date) the repo under .cache/apt_repo/
#   tests/apt_repo/build.sh serve     build, then serve it over HTTP on the docker bridge address
#                                     (prints the repo URL; idempotent: reuses a running server)
#   tests/apt_repo/build.sh url       print the URL of the running server (fails if none)
#   tests/apt_repo/build.sh stop      stop the server this script started
#   tests/apt_repo/build.sh fingerprint   print the signing key's fingerprint (builds first), which the
#                                     tests pin in grafana_apt_key_fingerprints like Grafana's own
#
# Environment: APT_REPO_ADDR (default: the docker bridge gateway, e.g. 172.17.0.1),
#              APT_REPO_PORT (default 18765), APT_REPO_DIR (default <repo root>/.cache/apt_repo).
# Output: $APT_REPO_DIR/repo/{dists/stable/{InRelease,Release,Release.gpg},dists/stable/main/binary-*/Packages*,
#         pool/main/g/grafana/*.deb, gpg.key, gpg-full.key}. The GPG key is generated here, once, without a
# passphrase, kept under $APT_REPO_DIR/gnupg (never committed: .cache/ is ignored) and used only for this repo.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DIR=${APT_REPO_DIR:-$ROOT/.cache/apt_repo}
REPO="$DIR/repo"
PORT=${APT_REPO_PORT:-18765}
export GNUPGHOME="$DIR/gnupg"
SUITE=stable
COMPONENT=main

need_tools() {
  missing=""
  command -v dpkg-deb >/dev/null || missing="$missing dpkg"
  command -v dpkg-scanpackages >/dev/null || missing="$missing dpkg-dev"
  command -v gpg >/dev/null || missing="$missing gnupg"
  if [ -n "$missing" ]; then
    echo "apt_repo: installing$missing" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing >&2
  fi
}

inputs_hash() {
  cat "$0" "$ROOT"/tests/grafana_double/grafana_double.py "$ROOT"/tests/grafana_double/README.md \
      "$ROOT"/tests/grafana_double/build_deb.sh "$ROOT"/tests/grafana_double/packaging/* | sha256sum | cut -d' ' -f1
}

ensure_key() {
  mkdir -p "$GNUPGHOME"
  chmod 700 "$DIR" "$GNUPGHOME"
  if ! gpg --batch --list-secret-keys apt-repo@llmops-vllm.invalid >/dev/null 2>&1; then
    echo "apt_repo: generating a throwaway signing key in $GNUPGHOME" >&2
    gpg --batch --quiet --passphrase '' --quick-generate-key \
      "llmops.vllm test apt repository <apt-repo@llmops-vllm.invalid>" rsa3072 sign never
  fi
}

build() {
  hash=$(inputs_hash)
  if [ -f "$DIR/stamp" ] && [ "$(cat "$DIR/stamp")" = "$hash" ] && [ -f "$REPO/dists/$SUITE/InRelease" ]; then
    echo "apt_repo: up to date ($REPO)" >&2
    return 0
  fi
  need_tools
  ensure_key
  rm -rf "$REPO.new"
  pool="$REPO.new/pool/$COMPONENT/g/grafana"
  mkdir -p "$pool"
  "$ROOT/tests/grafana_double/build_deb.sh" "$pool" >/dev/null
  cd "$REPO.new"
  for arch in all amd64 arm64; do
    bdir="dists/$SUITE/$COMPONENT/binary-$arch"
    mkdir -p "$bdir"
    dpkg-scanpackages --multiversion pool/ /dev/null 2>/dev/null > "$bdir/Packages"
    gzip -9nkf "$bdir/Packages"
  done
  {
    echo "Origin: llmops.vllm tests"
    echo "Label: grafana test double"
    echo "Suite: $SUITE"
    echo "Codename: $SUITE"
    echo "Date: $(LC_ALL=C date -u -R)"
    echo "Architectures: all amd64 arm64"
    echo "Components: $COMPONENT"
    echo "Description: Local repository with the Grafana test double (not Grafana)"
    for sum in MD5Sum:md5sum SHA256:sha256sum; do
      echo "${sum%%:*}:"
      cd "dists/$SUITE"
      for f in $(find "$COMPONENT" -type f -name 'Packages*' | sort); do
        printf ' %s %16d %s\n' "$(${sum#*:} "$f" | cut -d' ' -f1)" "$(stat -c %s "$f")" "$f"
      done
      cd - >/dev/null
    done
  } > "dists/$SUITE/Release"
  gpg --batch --yes --armor --detach-sign -o "dists/$SUITE/Release.gpg" "dists/$SUITE/Release"
  gpg --batch --yes --clearsign -o "dists/$SUITE/InRelease" "dists/$SUITE/Release"
  # apt.grafana.com publishes its key as /gpg.key and /gpg-full.key (ASCII armoured)
  gpg --batch --yes --armor --export apt-repo@llmops-vllm.invalid > gpg.key
  cp gpg.key gpg-full.key
  cd "$DIR"
  rm -rf "$REPO.old"
  [ -d "$REPO" ] && mv "$REPO" "$REPO.old"
  mv "$REPO.new" "$REPO"
  rm -rf "$REPO.old"
  echo "$hash" > "$DIR/stamp"
  echo "apt_repo: built $REPO" >&2
}

bridge_addr() {
  if [ -n "${APT_REPO_ADDR:-}" ]; then echo "$APT_REPO_ADDR"; return; fi
  gw=$(docker network inspect bridge -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}' 2>/dev/null || true)
  if [ -z "$gw" ]; then
    ifname=$(docker network inspect bridge -f '{{index .Options "com.docker.network.bridge.name"}}' 2>/dev/null || true)
    gw=$(ip -4 -o addr show "${ifname:-docker0}" 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -n1)
  fi
  [ -n "$gw" ] || { echo "apt_repo: cannot find the docker bridge address; set APT_REPO_ADDR" >&2; exit 1; }
  echo "$gw"
}

running_url() {
  [ -f "$DIR/http.pid" ] && [ -f "$DIR/http.url" ] || return 1
  kill -0 "$(cat "$DIR/http.pid")" 2>/dev/null || return 1
  url=$(cat "$DIR/http.url")
  python3 - "$url/dists/$SUITE/InRelease" 2>/dev/null <<'PY' || return 1
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=3).read()
PY
  echo "$url"
}

serve() {
  build
  if url=$(running_url); then echo "$url"; return 0; fi
  addr=$(bridge_addr)
  [ -f "$DIR/http.pid" ] && kill "$(cat "$DIR/http.pid")" 2>/dev/null || true
  # Another checkout's server may hold the usual port: take a free one then.
  port=$(python3 - "$addr" "$PORT" <<'PY'
import socket, sys
addr, port = sys.argv[1], int(sys.argv[2])
s = socket.socket()
try:
    s.bind((addr, port))
except OSError:
    s.close()
    s = socket.socket()
    s.bind((addr, 0))
print(s.getsockname()[1])
PY
)
  # setsid + nohup: the server outlives the (Ansible) process that started it.
  setsid nohup python3 -m http.server --bind "$addr" --directory "$REPO" "$port" \
    > "$DIR/http.log" 2>&1 < /dev/null &
  echo $! > "$DIR/http.pid"
  echo "http://$addr:$port" > "$DIR/http.url"
  i=0
  while ! url=$(running_url); do
    i=$((i + 1))
    if [ $i -gt 50 ]; then echo "apt_repo: server did not start, see $DIR/http.log" >&2; exit 1; fi
    sleep 0.2
  done
  echo "apt_repo: serving $REPO at $url" >&2
  echo "$url"
}

stop() {
  if [ -f "$DIR/http.pid" ]; then
    kill "$(cat "$DIR/http.pid")" 2>/dev/null || true
    rm -f "$DIR/http.pid" "$DIR/http.url"
  fi
}

fingerprint() {
  build
  gpg --batch --with-colons --list-keys apt-repo@llmops-vllm.invalid | awk -F: '$1 == "fpr" {print $10; exit}'
}

case "${1:-build}" in
  build) build ;;
  fingerprint) fingerprint ;;
  serve) serve ;;
  url) running_url ;;
  stop) stop ;;
  *) echo "usage: $0 [build|serve|url|stop|fingerprint]" >&2; exit 2 ;;
esac
