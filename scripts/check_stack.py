"""Say precisely which real-stack service is down, and how to start it.

Used by `make test` before pytest runs, and by tests/conftest.py. Exits 1 when
PostgreSQL or Redis cannot be reached: the suite never skips real-stack tests.
"""

import os
import socket
import sys
from urllib.parse import urlparse

DATABASE_URL = os.environ.get(
    "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hotline400"
)
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

HINTS = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect "
    "$(ls /etc/postgresql) main start",
    "Redis": 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" '
    "--appendonly no",
}


def reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=2
        ):
            return True
    except OSError:
        return False


def problems() -> list[str]:
    found = []
    for name, url, port in (
        ("PostgreSQL", DATABASE_URL, 5432),
        ("Redis", REDIS_URL, 6379),
    ):
        if not reachable(url, port):
            found.append(
                f"{name} is not reachable at {url}. Start it with:\n    {HINTS[name]}\n"
                f"or point {'DATABASE_URL' if name == 'PostgreSQL' else 'REDIS_URL'} "
                "at a running server."
            )
    return found


if __name__ == "__main__":
    errors = problems()
    for error in errors:
        print(error, file=sys.stderr)
    sys.exit(1 if errors else 0)
