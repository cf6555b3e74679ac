# The one place where the upstream Go services the suite runs are pinned (read by the Makefile and by
# lab/hpclab/upstream.py). Override on the command line: make test BSS_VERSION=v1.32.1
#
# BSS: github.com/OpenCHAMI/bss, boot-script-service and bss-init. The golden transcripts came from
# commit e4894b0 (v1.32.2 + 7 commits); the Go module proxy refuses that pseudo-version
# (v1.32.3-0.20260623160031-e4894b06f4c3: "403 Forbidden, This module version is not available"),
# so the default is v1.32.2, which is also the newest release tag it serves. docs/lab-doubles.md lists
# what differs between the two.
BSS_VERSION ?= v1.32.2

# boot-service: github.com/openchami/boot-service (OpenCHAMI 0.2), package cmd/server, installed as
# boot-service. The proxy serves v0.3.0, v0.3.1 and v0.3.2 (lower-case module path, as its go.mod declares).
BOOT_SERVICE_VERSION ?= v0.3.2
