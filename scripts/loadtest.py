"""Load test of `rnnclf serve`: concurrent clients send POST /predict; figures, never pass/fail.

    .venv/bin/python scripts/loadtest.py RUN [--requests 2000] [--clients 8] [--batch 1] [--seconds 60]
    .venv/bin/python scripts/loadtest.py --url http://127.0.0.1:8000 [...]

With RUN it starts `rnnclf serve RUN --port 0` on 127.0.0.1 (--device cpu by default) and stops it at the end;
with --url it tests a server already running. Each of --clients threads keeps one connection (httpx) and sends
requests until --requests have been sent or --seconds have passed. A request carries one text, or --batch K
texts. The texts are --input FILE (one per line) or, by default, --words random words each from a fixed list.

Prints requests/s, texts/s, latency p50 / p90 / p99 / max, and the errors (any answer but 200, or no answer),
with the load average before and after: the clients share the machine with the server, and on these 2-core
machines any other load changes the figures a lot. --json prints the figures as one JSON object instead.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

WORDS = (
    "the company said net profit rose to mln dlrs in the first quarter oil prices fell after opec agreed "
    "to cut crude output shares of the bank were up on the stock exchange trade deficit widened in march "
    "the central bank raised its discount rate interest rates grain exports wheat corn shipping tonnes "
    "acquisition merger offer per share dividend quarterly earnings revenue loss year ago"
).split()


def make_texts(count: int, words: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=words)) for _ in range(count)]


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else float("nan")


@contextmanager
def started_server(run: str, device: str, max_texts: int, timeout: float = 120):
    """`rnnclf serve RUN --port 0` in a subprocess; yields its URL once /health answers."""
    with tempfile.TemporaryFile("w+") as log:
        command = [sys.executable, "-m", "rnnclf", "serve", run, "--port", "0", "--device", device]
        server = subprocess.Popen([*command, "--max-texts", str(max_texts)], stderr=log, stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + timeout
            url = None
            while url is None or not _healthy(url):
                if server.poll() is not None:
                    log.seek(0)
                    sys.exit(f"loadtest: the server stopped: {log.read().strip()}")
                if time.monotonic() > deadline:
                    sys.exit(f"loadtest: the server did not answer within {timeout:.0f}s")
                log.seek(0)
                found = re.search(r"at (http://\S+);", log.read())
                url = found.group(1) if found else None
                time.sleep(0.2)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def load_test(url: str, texts: list[str], requests: int, clients: int, batch: int, seconds: float) -> dict[str, Any]:
    """Send up to `requests` requests of `batch` texts from `clients` threads, stopping after `seconds`."""
    latencies: list[float] = []
    errors: list[str] = []
    sent = 0
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client() -> None:
        nonlocal sent
        with httpx.Client(base_url=url, timeout=60) as http:
            while True:
                with lock:
                    if sent >= requests or time.perf_counter() > deadline:
                        return
                    start = sent * batch
                    sent += 1
                body = {"texts": [texts[(start + i) % len(texts)] for i in range(batch)]}
                began = time.perf_counter()
                try:
                    answer = http.post("/predict", json=body)
                    error = None if answer.status_code == 200 else f"HTTP {answer.status_code}: {answer.text[:200]}"
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                elapsed = time.perf_counter() - began
                with lock:
                    if error is None:
                        latencies.append(elapsed)
                    else:
                        errors.append(error)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    ordered = sorted(latencies)
    return {
        "requests": len(latencies) + len(errors),
        "ok": len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "seconds": round(wall, 3),
        "requests_per_s": round(len(latencies) / wall, 1),
        "texts_per_s": round(len(latencies) * batch / wall, 1),
        "latency_ms": {
            name: round(1000 * percentile(ordered, q), 2) for name, q in (("p50", 50), ("p90", 90), ("p99", 99))
        }
        | {"max": round(1000 * ordered[-1], 2) if ordered else float("nan")},
    }


def parse_args() -> tuple[argparse.Namespace, list[str]]:
    """The options, and the texts to send."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("run", nargs="?", help="run directory to serve for the test")
    target.add_argument("--url", help="base URL of a running `rnnclf serve`")
    parser.add_argument("--requests", type=int, default=2000, help="requests to send (default 2000)")
    parser.add_argument("--seconds", type=float, default=60, help="stop sending after this many seconds (default 60)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--batch", type=int, default=1, help="texts per request (default 1)")
    parser.add_argument("--words", type=int, default=50, help="words per generated text (default 50)")
    parser.add_argument("--input", type=Path, help="texts to send instead, one per line")
    parser.add_argument("--device", default="cpu", help="--device of the server started for RUN (default cpu)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    if min(args.requests, args.clients, args.batch, args.words) < 1 or args.seconds <= 0:
        parser.error("--requests, --clients, --batch, --words and --seconds must be positive")
    if args.input:
        texts = [line for line in args.input.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not texts:
            parser.error(f"{args.input}: no texts")
    else:
        texts = make_texts(1000, args.words)
    return args, texts


def measure(url: str, args: argparse.Namespace, texts: list[str]) -> dict[str, Any]:
    """A warm-up, then the load test of `url`: its figures with the conditions they were measured in."""
    info = httpx.get(f"{url}/info", timeout=10).json()
    load_test(url, texts, min(10, args.requests), 1, args.batch, args.seconds)  # warm-up, not counted
    before = os.getloadavg()[0]
    figures = load_test(url, texts, args.requests, args.clients, args.batch, args.seconds)
    conditions = {
        "url": url,
        "run": info["run"],
        "device": info["device"],
        "clients": args.clients,
        "batch": args.batch,
        "words_per_text": None if args.input else args.words,
        "cpu_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average_before": round(before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
    }
    return conditions | figures


def print_report(result: dict[str, Any]) -> None:
    latency = result["latency_ms"]
    print(f"server   {result['url']}  run {result['run']} on {result['device']}")
    print(
        f"load     {result['clients']} clients, {result['batch']} text(s) per request, {result['cpu_cores']} CPU cores, "
        f"load average {result['load_average_before']} before / {result['load_average_after']} after"
    )
    print(
        f"sent     {result['requests']} requests in {result['seconds']:.1f}s: {result['requests_per_s']} requests/s, "
        f"{result['texts_per_s']} texts/s"
    )
    print(
        f"latency  p50 {latency['p50']} ms, p90 {latency['p90']} ms, p99 {latency['p99']} ms, max {latency['max']} ms"
    )
    print(f"errors   {result['errors']}" + (f" (first: {result['first_error']})" if result["errors"] else ""))


def main() -> None:
    args, texts = parse_args()
    if args.url:
        result = measure(args.url.rstrip("/"), args, texts)
    else:
        with started_server(args.run, args.device, max(256, args.batch)) as url:
            result = measure(url, args, texts)
    if args.json:
        print(json.dumps(result))
    else:
        print_report(result)


if __name__ == "__main__":
    main()
