# Copyright: (c) 2026, hpc_boot.bss developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Name the real boot-service binary the boot_service scenario installs, and two free loopback ports.

Usage: lab_binary.py REPO   -> prints {"lab_binary", "lab_binary_source", "lab_port", "lab_file_port"} as JSON

The binary is the one `make upstream` installed from the Go module proxy (hpclab.upstream:
.build/upstream/boot-service@<version>/bin/boot-service). There is no double of boot-service: without it this
fails and says why (the Makefile's molecule target leaves the scenario out then, saying so).
"""
import json
import os
import sys


def installed_binary(repo):
    sys.path.insert(0, os.path.join(repo, "lab"))
    from hpclab import upstream  # pylint: disable=import-outside-toplevel
    manifest, why = upstream.availability("boot-service")
    if manifest is None:
        raise SystemExit(why)
    return manifest["boot_service"], f"make upstream: boot-service {manifest.get('version', '?')}"


def main():
    binary, source = installed_binary(sys.argv[1])
    from hpclab import procs  # pylint: disable=import-outside-toplevel
    print(json.dumps({"lab_binary": binary, "lab_binary_source": source,
                      "lab_port": procs.free_port(), "lab_file_port": procs.free_port()}))


if __name__ == "__main__":
    main()
