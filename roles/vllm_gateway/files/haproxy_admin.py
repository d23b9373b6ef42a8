#!/usr/bin/python3
# Talks to HAProxy's admin socket. Installed by the vllm_gateway role as
# /usr/local/libexec/llmops-vllm/haproxy-admin (root, 0755).
#   haproxy-admin SOCKET list BACKEND               JSON list of the backend's server names
#   haproxy-admin SOCKET state BACKEND STATE SERVER...
#                                                   set servers to ready, drain or maint;
#                                                   prints the JSON list of servers changed
#   haproxy-admin SOCKET share MAP PERCENT SERVER...
#                                                   canary share: PERCENT of 100 random buckets
#                                                   in the map, spread over the servers (0 or no
#                                                   server: empty); prints the JSON list of the
#                                                   servers when the map changed
import json
import socket
import sys


def command(sock_path, line):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    s.sendall((line + "\n").encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return data.decode()


def servers(sock_path, backend):
    """Server name -> admin state bits (srv_admin_state) of one backend."""
    result = {}
    for line in command(sock_path, "show servers state %s" % backend).splitlines():
        fields = line.split()
        if len(fields) > 6 and not line.startswith("#") and fields[1] == backend:
            result[fields[3]] = int(fields[6])
    return result


# srv_admin_state bits: 0x01 forced maintenance, 0x08 forced drain.
STATE_BITS = {"ready": 0, "maint": 0x01, "drain": 0x08}


def share(sock_path, map_path, percent, names):
    """Fill the canary map with ``percent`` buckets spread over ``names``."""
    if not 0 <= percent <= 100:
        print("the share must be 0-100, not %d" % percent, file=sys.stderr)
        return 1
    wanted = {str(i): names[i % len(names)] for i in range(percent)} if names else {}
    current = {}
    for line in command(sock_path, "show map %s" % map_path).splitlines():
        fields = line.split()
        if len(fields) == 3:
            current[fields[1]] = fields[2]
        elif line.strip():
            print("HAProxy refused 'show map %s': %s" % (map_path, line), file=sys.stderr)
            return 1
    if current == wanted:
        print("[]")
        return 0
    for line in ["clear map %s" % map_path] + ["add map %s %s %s" % (map_path, k, v) for k, v in wanted.items()]:
        answer = command(sock_path, line).strip()
        if answer and not answer.startswith("Done"):
            print("HAProxy refused '%s': %s" % (line, answer), file=sys.stderr)
            return 1
    print(json.dumps(sorted(set(names)) if wanted else sorted(set(current.values()))))
    return 0


def main(argv):
    sock_path, action, backend = argv[1], argv[2], argv[3]
    if action == "share":
        return share(sock_path, backend, int(argv[4]), argv[5:])
    current = servers(sock_path, backend)
    if action == "list":
        print(json.dumps(sorted(current)))
        return 0
    state, names = argv[4], argv[5:]
    unknown = [n for n in names if n not in current]
    if unknown:
        print("unknown servers in backend %s: %s" % (backend, ", ".join(unknown)), file=sys.stderr)
        return 1
    changed = []
    for name in names:
        if (current[name] & 0x09) != STATE_BITS[state]:
            answer = command(sock_path, "set server %s/%s state %s" % (backend, name, state)).strip()
            if answer:
                print("HAProxy refused 'set server %s/%s state %s': %s" % (backend, name, state, answer), file=sys.stderr)
                return 1
            changed.append(name)
    print(json.dumps(changed))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
