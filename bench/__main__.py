"""Run benchmarks by name: ``python -m bench [NAME ...]`` (all when none given).

Each benchmark is a module ``bench/<name>.py`` with a ``main()`` that prints
its figures and ratios and returns 0 when its target is met.
"""

import importlib
import pkgutil
import sys
from pathlib import Path


def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(
        m.name
        for m in pkgutil.iter_modules([str(here)])
        if not m.name.startswith("_") and m.name not in {"common"}
    )


def main(argv: list[str]) -> int:
    names = argv or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {available()}")
        return 2
    worst = 0
    for name in names:
        print(f"=== {name} ===", flush=True)
        result = importlib.import_module(f"bench.{name}").main()
        worst = max(worst, int(result or 0))
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
