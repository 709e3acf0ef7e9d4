"""Benchmarks: ``python -m bench [scenario ...] [--key value ...]``.

Each module in ``bench/scenarios`` is one scenario with ``run(options) -> list[dict]``; every
figure set is printed as one JSON line. Machines here are shared and noisy: scenarios repeat
their measurement and report medians (and ratios where a comparison is the point).
``python -m bench --list`` lists scenarios.
"""

from __future__ import annotations

import argparse
import json
import os
import pkgutil
import sys
from importlib import import_module

from bench import scenarios


def available() -> dict[str, object]:
    return {m.name: import_module(f"{scenarios.__name__}.{m.name}") for m in pkgutil.iter_modules(scenarios.__path__)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="scenarios to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--n", type=int, default=None, help="size (articles, tasks...) where a scenario takes one")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions; medians are reported")
    parser.add_argument("--out", default=None, help="also append the JSON lines to this file")
    options, extra = parser.parse_known_args(argv)
    options.extra = extra
    found = available()
    if options.list:
        for name, module in sorted(found.items()):
            print(f"{name:<20} {(module.__doc__ or '').strip().splitlines()[0] if module.__doc__ else ''}")
        return 0
    unknown = [n for n in options.names if n not in found]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}; try --list")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotator.settings")
    for name in options.names or sorted(found):
        for figures in found[name].run(options):
            line = json.dumps({"scenario": name, **figures}, sort_keys=False)
            print(line, flush=True)
            if options.out:
                with open(options.out, "a") as fh:
                    fh.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
