#!/usr/bin/env python3
"""Paired rounds: the probe server of one or more multinet builds against nginx configured as
Rook's tester's web server, on loopback, alternated one second at a time (BENCHMARKS.md).

usage: paired-rounds.py ROUNDS LOADS MULTINET [MULTINET ...]
  ROUNDS    rounds; each round loads every server once per load, order reversed every round
  LOADS     comma-separated KIND:STREAMS of `multinet bench client` (crr:1,rr:1,rr:4), or
            wrk:CONNECTIONS: the bench's capacity load (wrk, one thread per load CPU, kept-alive
            connections, GET /payload?bytes=64); use it with PIN=1, as the bench pins it
  MULTINET  multinet binaries whose `bench serve` is measured; the first also loads them all
env: PIN=1 puts the servers on CPU 1 and the load on CPU 0 (taskset); PAUSE=1 stops (SIGSTOP)
     every process named exactly rustc or cargo on the machine — anyone's builds — during the
     rounds and continues them after (also on SIGINT/SIGTERM; a SIGKILL leaves them stopped:
     `pkill -CONT -x rustc; pkill -CONT -x cargo`).

Needs root-free loopback only (127.0.0.7 servers, 127.0.0.8 load), nginx and openssl (and wrk
for wrk loads). Prints, per load and server: the median requests/s, the median ratio to nginx
of the same round with its interquartile range and the rounds it was above 1, and the median
user CPU µs a request (/proc/PID/stat, 10 ms ticks).
"""
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ADDRESS, SOURCE, NGINX_PORT = "127.0.0.7", "127.0.0.8", 18081


def pki(d):
    """A CA and a certificate naming the probe server (and an agent), as the run's PKI does."""
    run = lambda *a: subprocess.run(a, cwd=d, check=True, capture_output=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=paired rounds", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("openssl", "req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=server")
    with open(f"{d}/ext.cnf", "w") as f:
        f.write("subjectAltName=DNS:server.multinet.invalid,DNS:agent.multinet.invalid\n"
                "extendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n")
    run("openssl", "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "cert.pem", "-days", "2", "-extfile", "ext.cnf")
    run("openssl", "pkcs8", "-topk8", "-nocrypt", "-in", "leaf.key", "-out", "key.pem")
    return ["--ca", f"{d}/ca.pem", "--cert", f"{d}/cert.pem", "--key", f"{d}/key.pem"]


def nginx_conf(d):
    """The bench's own nginx (coordinator/src/bench/network/reference.rs, start_nginx)."""
    answer = "x" * 63 + "\\n"
    os.makedirs(f"{d}/tmp", exist_ok=True)
    with open(f"{d}/nginx.conf", "w") as f:
        f.write(f"""daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/tmp;
  proxy_temp_path {d}/tmp;
  fastcgi_temp_path {d}/tmp;
  keepalive_requests 100000000;
  server {{
    listen {ADDRESS}:{NGINX_PORT};
    location / {{ default_type text/plain; return 200 "$remote_addr\\n"; }}
    location = /payload {{ default_type application/octet-stream; return 200 "{answer}"; }}
  }}
}}
""")
    return f"{d}/nginx.conf"


def user_ticks(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11])


def main():
    rounds, loads, builds = int(sys.argv[1]), sys.argv[2].split(","), sys.argv[3:]
    # A signal ends the rounds through `finally`: servers stopped, paused builds continued.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    pin = os.environ.get("PIN") == "1"
    server_cpu, load_cpu = (["taskset", "-c", "1"], ["taskset", "-c", "0"]) if pin else ([], [])
    d = tempfile.mkdtemp(prefix="paired-rounds-")
    tls = pki(d)
    serve_ms = (rounds * len(loads) * (len(builds) + 1) * 3 + 60) * 1000
    procs, targets = {}, {}
    try:
        for i, build in enumerate(builds):
            name = f"{i}:{os.path.basename(build)}"
            p = subprocess.Popen(server_cpu + [build, "bench", "serve", "--address", ADDRESS,
                                 "--for-ms", str(serve_ms), *tls], stdout=subprocess.PIPE, text=True)
            procs[name] = p
            targets[name] = json.loads(p.stdout.readline())[0]["http"]
        procs["nginx"] = subprocess.Popen(server_cpu + ["nginx", "-c", nginx_conf(d), "-e", f"{d}/error.log"])
        targets["nginx"] = f"{ADDRESS}:{NGINX_PORT}"
        time.sleep(0.5)
        names = list(targets)
        if os.environ.get("PAUSE") == "1":
            subprocess.run("pkill -STOP -x rustc; pkill -STOP -x cargo", shell=True)
        rate = {(l, n): [] for l in loads for n in names}
        user = {(l, n): [] for l in loads for n in names}
        for r in range(rounds):
            for load in loads:
                kind, streams = load.split(":")
                for n in (names if r % 2 == 0 else names[::-1]):
                    before = user_ticks(procs[n].pid)
                    if kind == "wrk":
                        out = subprocess.run(load_cpu + ["wrk", "--threads=1", f"--connections={streams}",
                                             "--duration=1s", f"http://{targets[n]}/payload?bytes=64"],
                                             capture_output=True, text=True, check=True).stdout
                        assert "Non-2xx" not in out and "Socket errors" not in out, (n, out)
                        outcome = {"per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
                                   "requests": int(re.search(r"(\d+) requests in", out).group(1))}
                    else:
                        out = subprocess.run(load_cpu + [builds[0], "bench", "client", "--kind", kind,
                                             "--streams", streams, "--target", targets[n], "--source", SOURCE,
                                             "--duration-ms", "1000", *tls], capture_output=True, text=True, check=True)
                        outcome = json.loads(out.stdout)
                        assert outcome["errors"] == 0, (n, outcome)
                    ticks = user_ticks(procs[n].pid) - before
                    rate[(load, n)].append(outcome["per_second"])
                    user[(load, n)].append(ticks * 10_000 / outcome["requests"])
    finally:
        if os.environ.get("PAUSE") == "1":
            subprocess.run("pkill -CONT -x rustc; pkill -CONT -x cargo", shell=True)
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            p.wait(timeout=10)
        shutil.rmtree(d, ignore_errors=True)
    for load in loads:
        print(load)
        for n in names:
            ratios = [a / b for a, b in zip(rate[(load, n)], rate[(load, "nginx")])]
            q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
            above = sum(1 for x in ratios if x > 1)
            print(f"  {n}: {statistics.median(rate[(load, n)]):.0f}/s, ratio {statistics.median(ratios):.3f}"
                  f" (IQR {q[0]:.3f}-{q[2]:.3f}, above 1 in {above}/{len(ratios)}),"
                  f" user µs a request {statistics.median(user[(load, n)]):.2f}")


if __name__ == "__main__":
    main()
