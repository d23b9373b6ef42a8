#!/usr/bin/python3
# Waits until a vLLM unit answers /health with 200. Fails fast when systemd
# gives up on the unit or restarts it (a crash), printing the journal tail, so a
# broken model or flag fails in seconds instead of at the timeout.
# Usage: wait_ready.py UNIT HEALTH_URL TIMEOUT_SECONDS JOURNAL_LINES
# (ready.yml runs it as `python3 - UNIT ...` with the script on stdin).
import subprocess
import sys
import time
import urllib.error
import urllib.request


def unit_state(unit):
    out = subprocess.run(["systemctl", "show", "-p", "ActiveState,SubState,NRestarts", unit],
                         capture_output=True, text=True, check=False).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def journal(unit, lines):
    return subprocess.run(["journalctl", "-u", unit, "-n", str(lines), "--no-pager", "-o", "cat"],
                          capture_output=True, text=True, check=False).stdout


def healthy(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def main(unit, url, timeout, lines):
    deadline = time.monotonic() + timeout
    restarts = unit_state(unit).get("NRestarts", "0")
    while time.monotonic() < deadline:
        state = unit_state(unit)
        if state.get("ActiveState") in ("failed", "inactive") or state.get("NRestarts", "0") != restarts:
            print("%s did not come up (ActiveState=%s, SubState=%s, restarts %s -> %s). Journal:"
                  % (unit, state.get("ActiveState"), state.get("SubState"), restarts, state.get("NRestarts")))
            print(journal(unit, lines))
            return 1
        if healthy(url):
            print("%s is healthy" % unit)
            return 0
        time.sleep(1)
    print("%s: %s did not answer 200 within %d s. Journal:" % (unit, url, timeout))
    print(journal(unit, lines))
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
