#!/usr/bin/env python3
"""Memory under many large bodies at once (issue 14, RELIABILITY.md): N clients each send a
nearly 7 MiB AdmissionReview over TLS to a `fluxgate serve` started here on 127.0.0.1.
`burst`: all start sending together. `hold`: each sends all but the last byte, and the last
bytes go only once every client has sent the rest (clients that hold their bodies open).
Prints the answers, the server's peak RSS (VmHWM) and its RSS a few seconds later.

    python3 tools/attack-memory.py target/debug/fluxgate [clients] [burst|hold] [serve flags...]

Bounded: one round of N requests, loopback only, the server is stopped at the end.
"""

import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

binary = sys.argv[1]
clients = int(sys.argv[2]) if len(sys.argv) > 2 else 32
mode = sys.argv[3] if len(sys.argv) > 3 else "burst"
extra = sys.argv[4:]
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) // 1024  # MiB
    return 0


tmp = tempfile.mkdtemp(prefix="fluxgate-memory-")
port, metrics = free_port(), free_port()
ca = os.path.join(tmp, "ca.pem")
server = subprocess.Popen(
    [binary, "serve", "--addr", f"127.0.0.1:{port}", "--metrics-addr", f"127.0.0.1:{metrics}",
     "--ca-out", ca, "--audit-log", os.path.join(tmp, "audit.log"), "--shutdown-delay", "0s"]
    + extra,
    stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "stderr.log"), "w"))
context = ssl.create_default_context(cafile=None)
for _ in range(200):
    if os.path.exists(ca) and os.path.getsize(ca) > 0:
        break
    time.sleep(0.05)
context = ssl.create_default_context(cafile=ca)
context.check_hostname = False

review = json.load(open(os.path.join(root, "tests/fixtures/admission/human-patch-deployment.json")))
blob = "x" * (3 * 1024 * 1024 + 400 * 1024)
review["request"]["object"]["metadata"].setdefault("annotations", {})["blob"] = blob
review["request"]["oldObject"]["metadata"].setdefault("annotations", {})["blob"] = blob
body = json.dumps(review).encode()
head = (f"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()


def connect():
    for _ in range(100):
        try:
            raw = socket.create_connection(("127.0.0.1", port))
            return context.wrap_socket(raw, server_hostname="localhost")
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server not up")


connect().close()
base = rss(server.pid, "VmRSS")
barrier = threading.Barrier(clients + 1)
results = []


def client():
    try:
        s = connect()
        if mode == "burst":
            barrier.wait()
            s.sendall(head + body)
        else:
            s.sendall(head + body[:-1])
            barrier.wait()
            s.sendall(body[-1:])
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        results.append(int(data.split()[1]) if data else 0)
    except Exception as e:  # a refused or reset connection is a failed request
        results.append(repr(e))
        try:
            barrier.wait(timeout=1)
        except Exception:
            pass


threads = [threading.Thread(target=client) for _ in range(clients)]
for t in threads:
    t.start()
barrier.wait()
started = time.time()
for t in threads:
    t.join()
took = time.time() - started
peak = rss(server.pid, "VmHWM")
time.sleep(3)
after = rss(server.pid, "VmRSS")
server.terminate()
server.wait()
ok = sum(1 for r in results if r == 200)
print(f"{mode}: {clients} clients x {len(body) / 2**20:.1f} MiB {' '.join(extra)}: {ok} answered 200, "
      f"{len(results) - ok} failed {sorted(set(map(str, results)) - {'200'})}; all answered in {took:.1f}s; "
      f"RSS before {base} MiB, peak {peak} MiB, 3 s after {after} MiB")
