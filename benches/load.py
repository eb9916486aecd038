#!/usr/bin/env python3
"""Load test over real TLS with keep-alive on loopback: fluxgate against a bare baseline.

    python3 benches/load.py            # the full run of BENCHMARKS.md (about 2 minutes)
    python3 benches/load.py --quick    # one short iteration (CI)

Needs `oha` (cargo install oha --locked). For each server (fluxgate `serve` with the example
windows and an audit log file; `examples/baseline.rs`, which only parses the AdmissionReview and
answers allowed) it measures: time from start to ready, RSS idle, throughput and latency at
maximum rate, latency at a fixed rate of half that maximum, and peak RSS under load. The body is
a ~25 KB Deployment UPDATE by Flux (several field managers) governed by business-hours.
"""

import argparse
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def big_deployment_update(path):
    """The bench's 25 KB review: the recorded image bump with more managers, labels, annotations."""
    with open(os.path.join(ROOT, "tests/fixtures/admission/flux-dryrun-image-bump-deployment.json")) as f:
        review = json.load(f)
    for which in ("object", "oldObject"):
        meta = review["request"][which]["metadata"]
        entry = meta["managedFields"][0]
        for i, manager in enumerate(["kube-controller-manager", "horizontal-pod-autoscaler", "kubectl-rollout", "kubectl-edit"]):
            extra = json.loads(json.dumps(entry))
            extra.update(manager=manager, operation="Update", time=f"2026-11-2{i}T10:00:00Z")
            meta["managedFields"].append(extra)
        for i in range(20):
            meta["labels"][f"team.example.com/label-{i}"] = f"value-{i}"
            meta["annotations"][f"example.com/annotation-{i}"] = "x" * 80
    # Decided by the real clock against business-hours (Mon 08:00 to Thu 17:00 Berlin).
    with open(path, "w") as f:
        json.dump(review, f)
    return os.path.getsize(path)


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def wait_ready(port, ca, path, timeout=20.0):
    """Seconds until GET `path` over TLS answers 200 (polling every millisecond)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if os.path.exists(ca) and os.path.getsize(ca) > 0:
                ctx = ssl.create_default_context(cafile=ca)
                with socket.create_connection(("127.0.0.1", port), timeout=1) as raw:
                    with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
                        if tls.recv(64).startswith(b"HTTP/1.1 200"):
                            return time.monotonic() - start
        except (OSError, ssl.SSLError):
            pass
        time.sleep(0.001)
    raise SystemExit(f"server on {port} not ready after {timeout}s")


def oha(url, ca, body, duration, connections, rate=None):
    cmd = ["oha", "-z", duration, "-c", str(connections), "-m", "POST", "-T", "application/json",
           "-D", body, "--cacert", ca, "--no-tui", "--output-format", "json", url]
    if rate:
        cmd[1:1] = ["-q", str(rate), "--latency-correction"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def summary(result):
    s, p = result["summary"], result["latencyPercentiles"]
    codes = result.get("statusCodeDistribution", {})
    return {
        "rps": round(s["requestsPerSec"]),
        "p50_ms": round(p["p50"] * 1000, 3),
        "p99_ms": round(p["p99"] * 1000, 3),
        "p99.9_ms": round(p["p99.9"] * 1000, 3),
        "success": s["successRate"],
        "status": codes,
    }


def port_open(port, ca):
    """Seconds until the baseline (which has no /readyz) accepts connections."""
    start = time.monotonic()
    while not (os.path.exists(ca) and os.path.getsize(ca) > 0):
        time.sleep(0.001)
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return time.monotonic() - start
        except OSError:
            time.sleep(0.001)


def server_time_percentiles(metrics_port):
    """p50/p99/p99.9 of fluxgate's own server time, as bucket upper bounds of its histogram."""
    import urllib.request
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics").read().decode()
    buckets = []
    for line in text.splitlines():
        if line.startswith("fluxgate_admission_duration_seconds_bucket"):
            le = line.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.split()[-1])))
    total = buckets[-1][1]
    def bound(q):
        return next(le for le, count in buckets if count >= q * total)
    return {"requests": int(total), "p50_le_ms": bound(0.5) * 1000, "p99_le_ms": bound(0.99) * 1000,
            "p99.9_le_ms": bound(0.999) * 1000}


def run_server(name, cmd, port, ca, ready, body, args, tmp, metrics_port=None):
    stderr = open(os.path.join(tmp, f"{name}.stderr"), "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        ready_s = ready()
        time.sleep(0.5)
        idle = rss_kib(proc.pid)
        url = f"https://localhost:{port}/validate"
        oha(url, ca, body, "2s", args.connections)  # warm-up
        top = summary(oha(url, ca, body, args.duration, args.connections))
        loaded = rss_kib(proc.pid, "VmHWM")
        half = summary(oha(url, ca, body, args.duration, args.connections, rate=max(1, top["rps"] // 2)))
        result = {"ready_ms": round(ready_s * 1000, 1), "rss_idle_mib": round(idle / 1024, 1),
                  "rss_peak_mib": round(loaded / 1024, 1), "max": top, "half": half}
        if metrics_port:
            result["server_time"] = server_time_percentiles(metrics_port)
        return result
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one short iteration")
    parser.add_argument("--duration", default="15s")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if args.quick:
        args.duration = "1s"
    if not shutil.which("oha"):
        print("skipping the load test: oha not found (cargo install oha --locked)")
        return 0
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "fluxgate", "--example", "baseline"],
                   cwd=ROOT, check=True)
    tmp = tempfile.mkdtemp(prefix="fluxgate-load-")
    body = os.path.join(tmp, "review.json")
    size = big_deployment_update(body)
    fluxgate_ca, baseline_ca = os.path.join(tmp, "fluxgate-ca.pem"), os.path.join(tmp, "baseline-ca.pem")
    results = {"body_bytes": size, "connections": args.connections, "duration": args.duration}
    results["fluxgate"] = run_server(
        "fluxgate",
        [os.path.join(ROOT, "target/release/fluxgate"), "serve", "--addr", "127.0.0.1:18443",
         "--metrics-addr", "127.0.0.1:19090", "--ca-out", fluxgate_ca,
         "--audit-log", os.path.join(tmp, "audit.log"), "--windows", "deploy/examples/windows.yaml",
         "--shutdown-delay", "0s"],
        18443, fluxgate_ca, lambda: wait_ready(18443, fluxgate_ca, "/readyz"), body, args, tmp,
        metrics_port=19090)
    results["baseline"] = run_server(
        "baseline",
        [os.path.join(ROOT, "target/release/examples/baseline"), "127.0.0.1:18444", baseline_ca],
        18444, baseline_ca, lambda: port_open(18444, baseline_ca), body, args, tmp)
    results["ratio"] = round(results["fluxgate"]["max"]["rps"] / results["baseline"]["max"]["rps"], 3)
    with open(os.path.join(tmp, "audit.log")) as f:
        results["fluxgate"]["audit_lines"] = sum(1 for _ in f)
    print(json.dumps(results, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
