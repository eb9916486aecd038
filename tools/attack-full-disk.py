#!/usr/bin/env python3
"""A full disk under the audit log (issue 14, RELIABILITY.md). Needs a small filesystem:

    sudo mount -t tmpfs -o size=1m tmpfs /mnt/small
    python3 tools/attack-full-disk.py target/debug/fluxgate /mnt/small

Fills it but for ~100 KiB, sends 300 reviews (fresh TLS each) while it fills up, frees the
filler, sends 50 more, then checks the log: every line one parseable record, one per review
answered 200, none for a review answered 503. Loopback only; bounded.
"""

import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time

binary, small = sys.argv[1], sys.argv[2]
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


tmp = tempfile.mkdtemp(prefix="fluxgate-full-")
log = os.path.join(small, "audit.log")
filler = os.path.join(small, "filler")
stat = os.statvfs(small)
with open(filler, "wb") as f:
    f.write(b"\0" * (stat.f_bavail * stat.f_frsize - 100 * 1024))
port, metrics = free_port(), free_port()
ca = os.path.join(tmp, "ca.pem")
server = subprocess.Popen(
    [binary, "serve", "--addr", f"127.0.0.1:{port}", "--metrics-addr", f"127.0.0.1:{metrics}",
     "--ca-out", ca, "--audit-log", log, "--shutdown-delay", "0s"],
    stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "stderr.log"), "w"))
for _ in range(200):
    if os.path.exists(ca) and os.path.getsize(ca) > 0:
        break
    time.sleep(0.05)
time.sleep(0.3)
context = ssl.create_default_context(cafile=ca)
context.check_hostname = False
review = json.load(open(os.path.join(root, "tests/fixtures/admission/human-patch-deployment.json")))


def send(uid):
    review["request"]["uid"] = uid
    body = json.dumps(review).encode()
    s = context.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    s.sendall((f"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return int(data.split()[1])


answers = {}
for i in range(300):
    answers[f"full-{i}"] = send(f"full-{i}")
os.remove(filler)
freed = time.time()
first_ok = None
for i in range(50):
    status = send(f"after-{i}")
    answers[f"after-{i}"] = status
    if status == 200 and first_ok is None:
        first_ok = time.time() - freed
server.terminate()
server.wait()
rows = open(log, "rb").read().split(b"\n")[:-1]
records, unparseable = [], 0
for row in rows:
    try:
        records.append(json.loads(row)["uid"])
    except ValueError:
        unparseable += 1
ok = [u for u, s in answers.items() if s == 200]
refused = [u for u, s in answers.items() if s == 503]
other = [s for s in answers.values() if s not in (200, 503)]
print(f"{len(answers)} reviews: {len(ok)} answered 200, {len(refused)} refused 503, {len(other)} other; "
      f"log: {len(records)} records, {unparseable} unparseable rows; "
      f"every 200 logged once: {sorted(records) == sorted(ok)}; "
      f"first 200 after space returned: {first_ok and round(first_ok * 1000)} ms")
