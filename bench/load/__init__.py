"""The load test: ``python -m bench load`` (see bench/load/run.py)."""


def main() -> int:
    from bench.load.run import main as run

    return run()
