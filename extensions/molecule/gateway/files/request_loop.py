# Copyright: (c) 2026, hpc_boot.bss developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keep boot-script requests in flight through the gateway until a stop file appears.

Usage: request_loop.py URL STOPFILE. Several threads each send GET URL (which should carry a
"delay" so every request is held by the backend a while) back to back. Prints one JSON line:
the number of requests, the answers by HTTP status and the failures (connection errors, resets).
"""
import json
import os
import sys
import threading
import urllib.error
import urllib.request


def worker(url, stopfile, tally, lock):
    while not os.path.exists(stopfile):
        try:
            with urllib.request.urlopen(url, timeout=30) as answer:
                answer.read()
                key = str(answer.status)
        except urllib.error.HTTPError as err:
            key = str(err.code)
        except OSError as err:
            key = f"failed: {err}"
        with lock:
            tally[key] = tally.get(key, 0) + 1


def main():
    url, stopfile = sys.argv[1], sys.argv[2]
    tally, lock = {}, threading.Lock()
    threads = [threading.Thread(target=worker, args=(url, stopfile, tally, lock)) for _worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failures = {key: count for key, count in tally.items() if key.startswith("failed")}
    print(json.dumps({"requests": sum(tally.values()), "answers": tally, "failures": failures}))


if __name__ == "__main__":
    main()
