"""Load test of the web catalogue: N concurrent clients against ``twinforge serve`` on loopback.

    .venv/bin/python benchmarks/serve_load.py demo-output/catalog.sqlite \
        --clients 50 --duration 60 --out serve-load.json

Starts ``twinforge serve CATALOG`` as its own process on a free port of 127.0.0.1 (the only
address this sends traffic to), waits for ``/healthz``, then runs ``--clients`` asyncio
clients (httpx, one connection each, keep-alive) that request a fixed mix of pages in turn
until ``--duration`` seconds have passed or ``--max-requests`` requests were made, whichever
comes first; then stops the server with SIGINT and checks that it exits.

The mix, discovered from the catalogue through the JSON API: the home page, every listing
(HTML and JSON, first page), the landing page of every dataset, model and evaluation (up to
20 of each), a text search, the model comparison with its plot, the JSON of each record, and a
ranged download (the first 64 KiB of a catalogued file). An error is any exception or any
status other than 200/206. Latency is per request, from send to the last byte, in ms.

The clients and the server share this machine's cores: the figures are a floor of what the
server does on a machine of its own. The server's and the load generator's CPU time are
reported, so the share each took is known. Run by hand; figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _start(catalog: str, port: int, workers: int) -> subprocess.Popen[str]:
    command = [sys.executable, "-c", "from twinforge.cli import main; main()", "--quiet",
               "serve", catalog, "--host", HOST, "--port", str(port),
               "--workers", str(workers)]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://{HOST}:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"error: the server exited: {proc.communicate()[1].strip()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("error: the server did not answer /healthz within 60 s")
        time.sleep(0.2)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` and its live children (the server's worker
    processes) from Linux's /proc, s."""
    total = 0.0
    for proc in [pid, *_children(pid)]:
        fields = Path(f"/proc/{proc}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(c) for c in text]
    return [c for child in found for c in (child, *_children(child))]


def _mix(base: str) -> list[tuple[str, str, dict[str, str]]]:
    """(label, path, headers) of every request of the mix."""
    api = httpx.Client(base_url=base, timeout=30)
    mix: list[tuple[str, str, dict[str, str]]] = [("home", "/", {})]
    for listing in ("datasets", "campaigns", "simulators", "models", "surrogates", "runs",
                    "evaluations"):  # fmt: skip
        mix.append(("listing", f"/{listing}", {}))
    for listing in ("datasets", "models", "evaluations", "campaigns"):
        mix.append(("api listing", f"/api/v1/{listing}?limit=25", {}))
        items = api.get(f"/api/v1/{listing}", params={"limit": 20}).json()["items"]
        for item in items:
            mix.append(("landing", f"/{listing}/{item['id']}", {}))
            mix.append(("api record", f"/api/v1/records/{item['id']}", {}))
    mix += [("search", "/search?q=geant4", {}), ("compare", "/compare", {})]
    files = [
        f for d in api.get("/api/v1/datasets", params={"limit": 5}).json()["items"]
        for f in api.get(f"/api/v1/records/{d['id']}").json().get("files", [])
    ]  # fmt: skip
    if files:
        mix.append(("download 64 KiB", f"/files/{files[0]['id']}", {"Range": "bytes=0-65535"}))
    return mix


async def _client(
    base: str,
    mix: list[tuple[str, str, dict[str, str]]],
    start: int,
    deadline: float,
    budget: list[int],
    out: list[tuple[str, float, int]],
) -> None:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        i = start
        while time.monotonic() < deadline and budget[0] > 0:
            budget[0] -= 1
            label, path, headers = mix[i % len(mix)]
            i += 1
            t0 = time.perf_counter()
            try:
                response = await client.get(path, headers=headers)
                await response.aread()
                status = response.status_code
            except httpx.HTTPError:
                status = -1
            out.append((label, (time.perf_counter() - t0) * 1e3, status))


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


async def _load(base: str, mix: list, clients: int, duration: float, cap: int) -> dict[str, Any]:
    out: list[tuple[str, float, int]] = []
    budget = [cap]
    t0 = time.monotonic()
    deadline = t0 + duration
    await asyncio.gather(
        *(_client(base, mix, k * 7, deadline, budget, out) for k in range(clients))
    )
    wall = time.monotonic() - t0
    latencies = [ms for _, ms, _ in out]
    errors = [(label, status) for label, _, status in out if status not in (200, 206)]
    by_label: dict[str, list[float]] = {}
    for label, ms, _ in out:
        by_label.setdefault(label, []).append(ms)
    return {
        "requests": len(out),
        "wall_s": wall,
        "requests_per_s": len(out) / wall,
        "errors": len(errors),
        "error_examples": errors[:10],
        "latency_ms": {
            "p50": _percentile(latencies, 50),
            "p95": _percentile(latencies, 95),
            "p99": _percentile(latencies, 99),
            "max": max(latencies),
            "mean": statistics.fmean(latencies),
        },
        "p50_ms_by_request": {k: round(_percentile(v, 50), 2) for k, v in sorted(by_label.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("catalog", help="catalogue file or URL to serve")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--max-requests", type=int, default=500_000, help="hard cap")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--out", type=Path, help="write the result as JSON (atomically)")
    args = parser.parse_args()
    if args.clients < 1 or not 0 < args.duration <= 600:
        raise SystemExit("error: --clients >= 1 and 0 < --duration <= 600")
    port = _free_port()
    base = f"http://{HOST}:{port}"
    server = _start(args.catalog, port, args.workers)
    try:
        mix = _mix(base)
        server_cpu, client_cpu = _cpu_seconds(server.pid), time.process_time()
        result = asyncio.run(_load(base, mix, args.clients, args.duration, args.max_requests))
        server_cpu = _cpu_seconds(server.pid) - server_cpu
        client_cpu = time.process_time() - client_cpu
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    result |= {
        "benchmark": "serve_load",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "catalog": args.catalog,
        "clients": args.clients,
        "workers": args.workers,
        "duration_s": args.duration,
        "distinct_requests": len(mix),
        "server_exit_code": server.returncode,
        "server_cpu_s": server_cpu,
        "server_cpu_ms_per_request": server_cpu / max(result["requests"], 1) * 1e3,
        "client_cpu_s": client_cpu,
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
    }
    lat = result["latency_ms"]
    print(
        f"{result['requests']} requests in {result['wall_s']:.1f} s "
        f"({result['requests_per_s']:.0f}/s) from {args.clients} clients; errors "
        f"{result['errors']}; latency p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms, "
        f"p99 {lat['p99']:.1f} ms, max {lat['max']:.0f} ms; server exit {server.returncode}"
    )
    print(
        f"CPU: server {server_cpu:.1f} s ({result['server_cpu_ms_per_request']:.1f} ms a request), "
        f"load generator {client_cpu:.1f} s, of {2 * result['wall_s']:.0f} core-seconds"
    )
    for label, ms in result["p50_ms_by_request"].items():
        print(f"  {label:16s} p50 {ms:8.2f} ms")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=args.out.parent, delete=False,
                                         suffix=".tmp") as fh:  # fmt: skip
            json.dump(result, fh, indent=2)
        os.replace(fh.name, args.out)


if __name__ == "__main__":
    main()
