"""Run every molecule scenario (``molecule test -s <name>``), a few at a time, for ``make molecule``.

Each scenario creates its own lab (processes on free loopback ports, a temporary directory of its own)
in its create.yml, so scenarios can run side by side; ``molecule test --all --workers N`` cannot be used
because it skips each scenario's create and destroy (it expects one shared "default" scenario).
A scenario's output goes to ``<logs>/<name>.log`` and is printed whole once it ends, so outputs never
interleave. The longest scenarios of the last run start first (``<logs>/durations.json``). Exit status 1
if any scenario failed; every scenario runs to its end either way (molecule destroys what it created).
"""

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import threading
import time

PRINT_LOCK = threading.Lock()


def scenarios(directory, exclude):
    names = sorted(name for name in os.listdir(directory)
                   if os.path.isfile(os.path.join(directory, name, "molecule.yml")) and name not in exclude)
    return names


def ordered(names, durations):
    """Longest first by the last run's figures; scenarios never timed before go first of all."""
    return sorted(names, key=lambda name: (name in durations, -durations.get(name, 0.0), name))


def run_one(name, logs):
    log = os.path.join(logs, f"{name}.log")
    start = time.monotonic()
    with open(log, "w", encoding="utf-8") as out:
        returncode = subprocess.run(["molecule", "test", "-s", name], stdout=out, stderr=subprocess.STDOUT,
                                    check=False).returncode
    seconds = time.monotonic() - start
    with PRINT_LOCK, open(log, encoding="utf-8", errors="replace") as handle:
        print(f"==== molecule scenario {name}: {'passed' if returncode == 0 else 'FAILED'} ({seconds:.0f} s)", flush=True)
        sys.stdout.write(handle.read())
        print(f"==== end of molecule scenario {name}", flush=True)
    return name, returncode, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--exclude", action="append", default=[])
    parser.add_argument("--directory", default="extensions/molecule")
    parser.add_argument("--logs", required=True)
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers must be 1 or more, got {args.workers}")
    os.makedirs(args.logs, exist_ok=True)
    figures = os.path.join(args.logs, "durations.json")
    try:
        with open(figures, encoding="utf-8") as handle:
            durations = json.load(handle)
    except (OSError, ValueError):
        durations = {}
    names = ordered(scenarios(args.directory, set(args.exclude)), durations)
    if not names:
        print("molecule: no scenarios")
        return 0
    print(f"molecule: {len(names)} scenarios, {args.workers} at a time: {' '.join(names)}", flush=True)
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.workers) as pool:
        results = list(pool.map(lambda name: run_one(name, args.logs), names))
    durations.update({name: round(seconds, 1) for name, _code, seconds in results})
    with open(figures, "w", encoding="utf-8") as handle:
        json.dump(durations, handle, indent=1, sort_keys=True)
    failed = [name for name, code, _seconds in results if code != 0]
    for name, code, seconds in sorted(results, key=lambda result: -result[2]):
        print(f"molecule: {name:<16} {'passed' if code == 0 else 'FAILED':<7} {seconds:6.0f} s")
    print(f"molecule: {len(names) - len(failed)} of {len(names)} scenarios passed in {time.monotonic() - start:.0f} s"
          + (f"; failed: {' '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
