#!/bin/sh
# Build the `grafana` .deb of the Grafana test double: build_deb.sh OUTDIR
# Layout after Grafana's official deb (packaging/deb in grafana/grafana):
#   /usr/share/grafana/{grafana_double.py,README.md,conf/defaults.ini,bin/grafana}
#   /usr/sbin/{grafana,grafana-server,grafana-cli}
#   /etc/grafana/grafana.ini, /etc/grafana/provisioning/*, /etc/default/grafana-server (conffiles)
#   /lib/systemd/system/grafana-server.service, /var/lib/grafana, /var/log/grafana
# Prints the path of the .deb it wrote.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:?usage: build_deb.sh OUTDIR}
UPSTREAM=$(sed -n 's/^VERSION = "\(.*\)"$/\1/p' "$HERE/grafana_double.py")
[ -n "$UPSTREAM" ] || { echo "no VERSION in grafana_double.py" >&2; exit 1; }
VERSION="${UPSTREAM}+double"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
R="$STAGE/root"

install -d -m 755 "$R/DEBIAN" "$R/usr/share/grafana/bin" "$R/usr/share/grafana/conf" "$R/usr/sbin" \
  "$R/etc/grafana" "$R/etc/default" "$R/lib/systemd/system" "$R/var/lib/grafana" "$R/var/log/grafana"
for d in access-control alerting dashboards datasources notifiers plugins; do
  install -d -m 755 "$R/etc/grafana/provisioning/$d"
done
install -m 644 "$HERE/grafana_double.py" "$R/usr/share/grafana/grafana_double.py"
install -m 644 "$HERE/README.md" "$R/usr/share/grafana/README.md"
printf '; Defaults are built into grafana_double.py (the keys of Grafana'"'"'s conf/defaults.ini it reads).\n' \
  > "$R/usr/share/grafana/conf/defaults.ini"
cat > "$R/usr/share/grafana/bin/grafana" <<'SH'
#!/bin/sh
# `grafana server ...` / `grafana cli ...` of the Grafana test double.
exec /usr/bin/python3 /usr/share/grafana/grafana_double.py "$@"
SH
cat > "$R/usr/sbin/grafana-server" <<'SH'
#!/bin/sh
exec /usr/share/grafana/bin/grafana server "$@"
SH
cat > "$R/usr/sbin/grafana-cli" <<'SH'
#!/bin/sh
exec /usr/share/grafana/bin/grafana cli "$@"
SH
chmod 755 "$R/usr/share/grafana/bin/grafana" "$R/usr/sbin/grafana-server" "$R/usr/sbin/grafana-cli"
ln -s ../share/grafana/bin/grafana "$R/usr/sbin/grafana"
install -m 640 "$HERE/packaging/grafana.ini" "$R/etc/grafana/grafana.ini"
install -m 644 "$HERE/packaging/grafana-server.default" "$R/etc/default/grafana-server"
install -m 644 "$HERE/packaging/grafana-server.service" "$R/lib/systemd/system/grafana-server.service"
install -m 755 "$HERE/packaging/postinst" "$R/DEBIAN/postinst"
install -m 755 "$HERE/packaging/prerm" "$R/DEBIAN/prerm"
printf '/etc/grafana/grafana.ini\n/etc/default/grafana-server\n' > "$R/DEBIAN/conffiles"
SIZE=$(du -sk "$R" | cut -f1)
cat > "$R/DEBIAN/control" <<CTRL
Package: grafana
Version: $VERSION
Architecture: all
Maintainer: llmops.vllm tests <noreply@example.invalid>
Installed-Size: $SIZE
Depends: python3 (>= 3.9), adduser
Section: default
Priority: optional
Homepage: https://grafana.com
Description: Grafana test double (NOT Grafana)
 A small Python HTTP server that speaks the subset of Grafana's HTTP API used
 by the llmops.vllm collection, packaged with the official package's file
 layout and unit name so that roles install it through their real apt path.
 See /usr/share/grafana/README.md for what it reproduces and what it does not.
CTRL
# Reproducible timestamps: the .deb changes only when its inputs do.
EPOCH=${SOURCE_DATE_EPOCH:-$(stat -c %Y "$HERE/grafana_double.py")}
find "$R" -exec touch -h -d "@$EPOCH" {} +
DEB="$OUT/grafana_${VERSION}_all.deb"
SOURCE_DATE_EPOCH=$EPOCH dpkg-deb --root-owner-group -Zxz --build "$R" "$DEB" >/dev/null
echo "$DEB"
