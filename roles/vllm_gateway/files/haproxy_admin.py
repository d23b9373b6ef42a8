# Prints the server names HAProxy runs in one backend, as a JSON list, read from
# its admin socket ("show servers state <backend>").
import json
import socket
import sys

sock_path, backend = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sock_path)
s.sendall(("show servers state %s\n" % backend).encode())
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
names = []
for line in data.decode().splitlines():
    fields = line.split()
    if len(fields) > 3 and not line.startswith("#") and fields[1] == backend:
        names.append(fields[3])
print(json.dumps(names))
