"""A throwaway PostgreSQL server for the tests: initdb + pg_ctl in a temp directory, on a free
loopback port, run as a non-root user (PostgreSQL refuses to run as root). Set
PHONETREE_TEST_POSTGRES_URL to use an existing server instead."""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def _bin_dir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="phonetree-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            user = "postgres" if _user_exists("postgres") else "nobody"
            self.as_user = ["runuser", "-u", user, "--"]
            shutil.chown(self.root, user)
            os.chmod(self.root, 0o755)

    @property
    def available(self) -> bool:
        return self.bin is not None

    def _run(self, *args: str) -> None:
        subprocess.run(self.as_user + list(args), check=True, capture_output=True, cwd=self.root)

    def start(self) -> str:
        assert self.bin is not None
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "phonetree",
                  "--no-sync", "-E", "UTF8")
        # PostgreSQL can't be handed a bound socket, and a port found free is free only until
        # another process binds it: if one took it before the server did, choose another.
        for attempt in range(1, 6):
            options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
            log = self.root / f"log.{attempt}"
            try:
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
                          "-l", str(log), "-w", "start")
                break
            except subprocess.CalledProcessError:
                if attempt == 5 or not _port_was_taken(log):
                    raise
                self.port = _free_port()
        return f"postgresql+psycopg://phonetree@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        if self.bin is not None and self.data.exists():
            subprocess.run(self.as_user + [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                                           "stop"], capture_output=True, cwd=self.root)
        shutil.rmtree(self.root, ignore_errors=True)


def _port_was_taken(log: Path) -> bool:
    try:
        return "Address already in use" in log.read_text(errors="replace")
    except OSError:
        return False


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False
