"""A service as a child process: ``python -m distortion serve`` on a free loopback port, started, waited for,
stopped or killed (what the benchmark and the tests run against)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

__all__ = ["ServiceProcess", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A port that nothing listens on now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServiceProcess:
    """``distortion serve --root root <flags>`` on ``127.0.0.1`` and a free port, its output appended to ``log``.

    Args:
        root: the service root.
        flags: the model and any other flags of ``distortion serve``.
        log: where the process's output goes.
    """

    def __init__(self, root: str | Path, flags: list[str], log: str | Path) -> None:
        self.root, self.flags, self.log = Path(root), list(flags), Path(log)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.launched = 0.0

    def start(self, timeout: float = 180) -> float:
        """Start the process and wait until it answers ``/health``; the seconds that took."""
        self.launch()
        return self.wait(timeout)

    def launch(self) -> None:
        """Start the process without waiting for it (:meth:`wait` does)."""
        command = [sys.executable, "-m", "distortion", "serve", "--root", str(self.root), "--port", str(self.port),
                   *self.flags]  # fmt: skip
        self.launched = time.perf_counter()
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())

    def wait(self, timeout: float = 180) -> float:
        """Wait until the launched process answers ``/health``; the seconds since its launch."""
        started = self.launched
        while time.perf_counter() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited with {self.process.returncode}: {self._tail()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        raise TimeoutError(f"the service did not answer within {timeout:g} s: {self._tail()}")

    def _tail(self) -> str:
        return self.log.read_text()[-2000:] if self.log.is_file() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown of any kind."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 20 s."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self, api_key: str | None = None, timeout: float = 120) -> httpx.Client:
        """An HTTP client of the service, with ``api_key`` as its bearer token."""
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
