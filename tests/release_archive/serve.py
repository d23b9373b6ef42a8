#!/usr/bin/env python3
"""Test helper: a local mirror of the official Prometheus release archives.

Builds prometheus-<v>.linux-amd64.tar.gz and node_exporter-<v>.linux-amd64.tar.gz
with the layout of the official releases (<name>-<v>.linux-amd64/<binary>,
LICENSE, NOTICE) from the binaries of Debian's packages (downloaded with
`apt-get download`, unpacked with dpkg-deb; nothing is installed), writes each
release's sha256sums.txt, and serves the tree on 127.0.0.1 with Python's
http.server, in the layout of the release pages:

    http://127.0.0.1:<port>/prometheus/v2.42.0/prometheus-2.42.0.linux-amd64.tar.gz
    http://127.0.0.1:<port>/prometheus/v2.42.0/sha256sums.txt
    http://127.0.0.1:<port>/node_exporter/v1.5.0/...

so the roles' *_archive_base_url points at http://127.0.0.1:<port>/<name>/v<version>.

    serve.py start --state-dir DIR   build if needed, start the server unless
                                     DIR/server.json names a live one; prints
                                     {"url": ..., "pid": ...}
    serve.py stop --state-dir DIR    stop the server DIR/server.json names
    serve.py build                   only build the archives

The server exits by itself after --idle-exit seconds (default 1800) without a
request, so an interrupted test leaves nothing running for long.
"""

import argparse
import glob
import hashlib
import http.server
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CACHE = os.path.join(ROOT, ".cache", "release_archive")
MIRROR = os.path.join(CACHE, "mirror")

# name in the archive -> (Debian package, binaries: path in the package -> name in the archive)
RELEASES = {
    "prometheus": ("prometheus", {"usr/bin/prometheus": "prometheus", "usr/bin/promtool": "promtool"}),
    "node_exporter": ("prometheus-node-exporter", {"usr/bin/prometheus-node-exporter": "node_exporter"}),
}


def deb_version(package):
    out = subprocess.run(["apt-cache", "policy", package], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.strip().startswith("Candidate:"):
            return line.split()[1]
    raise SystemExit("apt-cache knows no candidate for %s" % package)


def upstream(version):
    # 2.42.0+ds-5+deb12u1 -> 2.42.0 ; 1.5.0-1+b6 -> 1.5.0
    return version.split(":")[-1].split("-")[0].split("+")[0]


def fetch_deb(package, workdir):
    debs = os.path.join(CACHE, "debs")
    os.makedirs(debs, exist_ok=True)
    found = glob.glob(os.path.join(debs, package + "_*.deb"))
    if not found:
        cmd = ["apt-get", "download", package]
        if subprocess.run(cmd, cwd=debs, stdout=sys.stderr).returncode != 0:
            subprocess.run(["apt-get", "update"], check=True, stdout=sys.stderr)
            subprocess.run(cmd, cwd=debs, check=True, stdout=sys.stderr)
        found = glob.glob(os.path.join(debs, package + "_*.deb"))
    target = os.path.join(workdir, package)
    subprocess.run(["dpkg-deb", "-x", found[0], target], check=True, stdout=sys.stderr)
    return target


def add_file(tar, name, data, mode):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 0
    info.uname = info.gname = "root"
    tar.addfile(info, io.BytesIO(data))


def build():
    """Builds the archives once; returns {name: version}."""
    versions = {}
    for name, (package, binaries) in RELEASES.items():
        version = upstream(deb_version(package))
        versions[name] = version
        reldir = os.path.join(MIRROR, name, "v" + version)
        stem = "%s-%s.linux-amd64" % (name, version)
        archive = os.path.join(reldir, stem + ".tar.gz")
        if os.path.exists(os.path.join(reldir, "sha256sums.txt")):
            continue
        os.makedirs(reldir, exist_ok=True)
        with tempfile.TemporaryDirectory() as work:
            tree = fetch_deb(package, work)
            with tarfile.open(archive + ".tmp", "w:gz") as tar:
                for src, dest in binaries.items():
                    with open(os.path.join(tree, src), "rb") as f:
                        add_file(tar, stem + "/" + dest, f.read(), 0o755)
                copyright_file = os.path.join(tree, "usr/share/doc", package, "copyright")
                with open(copyright_file, "rb") as f:
                    add_file(tar, stem + "/LICENSE", f.read(), 0o644)
                add_file(tar, stem + "/NOTICE", b"Built by tests/release_archive from Debian's " + package.encode() + b" package.\n", 0o644)
        os.replace(archive + ".tmp", archive)
        digest = hashlib.sha256(open(archive, "rb").read()).hexdigest()
        with open(os.path.join(reldir, "sha256sums.txt"), "w") as f:
            # A decoy line first, as the real file lists every platform.
            f.write("%s  %s-%s.linux-arm64.tar.gz\n" % ("0" * 64, name, version))
            f.write("%s  %s\n" % (digest, stem + ".tar.gz"))
    return versions


def alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return b"serve.py" in f.read()
    except OSError:
        return False


def serve(port_file, idle_exit):
    last = [time.monotonic()]

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=MIRROR, **kw)

        def log_message(self, *a):
            last[0] = time.monotonic()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(httpd.server_address[1]))
    os.replace(port_file + ".tmp", port_file)

    def watchdog():
        while time.monotonic() - last[0] < idle_exit:
            time.sleep(5)
        httpd.shutdown()

    threading.Thread(target=watchdog, daemon=True).start()
    httpd.serve_forever()


def start(state_dir, idle_exit):
    os.makedirs(state_dir, exist_ok=True)
    state = os.path.join(state_dir, "server.json")
    versions = build()
    if os.path.exists(state):
        with open(state) as f:
            info = json.load(f)
        if alive(info["pid"]):
            print(json.dumps(info))
            return
    port_file = os.path.join(state_dir, "server.port")
    if os.path.exists(port_file):
        os.unlink(port_file)
    pid = os.fork()
    if pid == 0:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        try:
            serve(port_file, idle_exit)
        finally:
            os._exit(0)
    deadline = time.monotonic() + 30
    while not os.path.exists(port_file):
        if time.monotonic() > deadline:
            raise SystemExit("the archive server did not start")
        time.sleep(0.1)
    port = int(open(port_file).read())
    info = {"pid": pid, "port": port, "url": "http://127.0.0.1:%d" % port, "versions": versions}
    with open(state, "w") as f:
        json.dump(info, f)
    print(json.dumps(info))


def stop(state_dir):
    state = os.path.join(state_dir, "server.json")
    if not os.path.exists(state):
        return
    with open(state) as f:
        info = json.load(f)
    if alive(info["pid"]):
        os.kill(info["pid"], signal.SIGTERM)
    os.unlink(state)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["start", "stop", "build"])
    p.add_argument("--state-dir", default=os.path.join(CACHE, "state"))
    p.add_argument("--idle-exit", type=int, default=1800)
    a = p.parse_args()
    if a.action == "build":
        print(json.dumps(build()))
    elif a.action == "start":
        start(a.state_dir, a.idle_exit)
    else:
        stop(a.state_dir)


if __name__ == "__main__":
    sys.exit(main())
