#!/usr/bin/env bash
# Prints the path of a promtool binary, getting one when there is none:
#   1. $PROMTOOL, or promtool on PATH;
#   2. .cache/promtool/usr/bin/promtool, extracted earlier;
#   3. Debian's `prometheus` package: downloaded with `apt-get download` and
#      unpacked with dpkg-deb into .cache/promtool (nothing is installed, so no
#      Prometheus service starts on the controller);
#   4. failing that, `apt-get install -y prometheus`, and its service is stopped
#      and disabled at once.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="$root/.cache/promtool"

if [[ -n "${PROMTOOL:-}" && -x "$PROMTOOL" ]]; then echo "$PROMTOOL"; exit 0; fi
if command -v promtool >/dev/null 2>&1; then command -v promtool; exit 0; fi
if [[ -x "$cache/usr/bin/promtool" ]]; then echo "$cache/usr/bin/promtool"; exit 0; fi

mkdir -p "$cache"
if command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1; then
  (
    cd "$cache"
    rm -f prometheus_*.deb
    apt-get download prometheus >&2 || { apt-get update >&2 && apt-get download prometheus >&2; }
    dpkg-deb -x prometheus_*.deb "$cache"
  ) || true
  if [[ -x "$cache/usr/bin/promtool" ]]; then echo "$cache/usr/bin/promtool"; exit 0; fi
  apt-get install -y --no-install-recommends prometheus >&2
  systemctl disable --now prometheus >&2 2>/dev/null || service prometheus stop >&2 2>/dev/null || true
  command -v promtool && exit 0
fi
echo "promtool not found and could not be obtained (install Debian's prometheus package)" >&2
exit 1
