"""The command line as a user runs it: `rnnclf ...` in a subprocess, its one-line errors, commands that must stay
light (import no torch), and `rnnclf serve` running in the background."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def rnnclf(
    *args: str, stdin: str | None = None, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rnnclf", *args], capture_output=True, text=True, input=stdin, cwd=cwd, timeout=timeout
    )


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def run_light(argvs: list[list[str]], heavy: set[str]) -> subprocess.CompletedProcess:
    """`rnnclf ARGV` for each argv, in one fresh interpreter: each must succeed and import none of `heavy`."""
    code = (
        "import sys\n"
        "from rnnclf.cli import main\n"
        f"for argv in {argvs!r}:\n"
        "    sys.argv = ['rnnclf', *argv]\n"
        "    try:\n        main()\n    except SystemExit as exit:\n        assert not exit.code, exit.code\n"
        f"heavy = {sorted(heavy)!r}\n"
        "assert not set(heavy) & set(sys.modules), set(heavy) & set(sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result


@contextmanager
def running_server(run: Path, log: Path, *args: str, timeout: float = 60) -> Iterator[tuple[str, subprocess.Popen]]:
    """`rnnclf serve RUN --port 0`: yields the URL from its start line (once /health answers) and the process."""
    import httpx  # the serve extra; the tests that serve skip without it

    with log.open("w") as stderr:
        command = [sys.executable, "-m", "rnnclf", "serve", str(run), "--port", "0", "--device", "cpu", *args]
        server = subprocess.Popen(command, stderr=stderr, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert server.poll() is None, f"the server stopped: {log.read_text()}"
            assert time.monotonic() < deadline, f"no answer from the server within {timeout}s: {log.read_text()}"
            found = re.search(r" at (http://127\.0\.0\.1:\d+); API docs at \1/docs", log.read_text())
            if found:
                try:
                    if httpx.get(f"{found.group(1)}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        yield found.group(1), server
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
