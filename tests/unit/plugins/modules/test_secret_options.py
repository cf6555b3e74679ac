# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every module option that carries a secret is no_log, read from the argument spec each module really builds.

Each module's main() is run until it constructs AnsibleModule; the spec it passes is captured there,
so options added through shared specs (BSS API, PostgreSQL, etcd) are checked where they are used.
"""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

from ansible.module_utils import basic

from ansible_collections.hpc_boot.bss.plugins import modules as modules_package

SECRET_NAME = re.compile(r"(pass(word|wd|phrase)?|token|secret|credential|api_?key|private_?key)($|_)|(^|_)key$")


class SpecCaptured(Exception):
    def __init__(self, spec):
        super().__init__("argument spec captured")
        self.spec = spec


def module_names():
    return sorted(info.name for info in pkgutil.iter_modules(list(modules_package.__path__)) if not info.name.startswith("_"))


def captured_spec(name, monkeypatch):
    module = importlib.import_module("%s.%s" % (modules_package.__name__, name))

    def capture(self, argument_spec, *args, **kwargs):
        raise SpecCaptured(argument_spec)

    monkeypatch.setattr(basic.AnsibleModule, "__init__", capture)
    with pytest.raises(SpecCaptured) as raised:
        module.main()
    return raised.value.spec


def secret_options_not_hidden(spec, prefix=""):
    """Names of options that look like secrets and are not no_log (file paths are not secrets)."""
    found = []
    for name, option in sorted(spec.items()):
        names = [name] + list(option.get("aliases") or [])
        looks_secret = any(SECRET_NAME.search(candidate.lower()) for candidate in names)
        if looks_secret and option.get("type") != "path" and option.get("no_log") is not True:
            found.append(prefix + name)
        if option.get("options"):
            found.extend(secret_options_not_hidden(option["options"], prefix + name + "."))
    return found


def test_every_module_is_checked():
    assert {"bootparams", "import_bootparams", "schema", "etcd_snapshot", "cutover_state"} <= set(module_names())


@pytest.mark.parametrize("name", module_names())
def test_secret_options_are_no_log(name, monkeypatch):
    spec = captured_spec(name, monkeypatch)
    assert spec, "module %s built an empty argument spec" % name
    assert secret_options_not_hidden(spec) == [], "module %s logs secret options" % name


def test_the_modules_carry_the_secrets_the_audit_is_about(monkeypatch):
    """The audit above must not pass vacuously: the known secret options exist and are no_log."""
    expected = {"bootparams": ["token"], "import_bootparams": ["bss_token", "db_password", "etcd_password", "smd_token"],
                "schema": ["db_password"], "etcd_snapshot": ["etcd_password"]}
    for name, options in expected.items():
        spec = captured_spec(name, monkeypatch)
        for option in options:
            assert spec[option].get("no_log") is True, "%s.%s" % (name, option)


@pytest.mark.parametrize("spec, found", [
    ({"db_password": {"type": "str"}}, ["db_password"]),
    ({"api_token": {"type": "str", "no_log": False}}, ["api_token"]),
    ({"auth": {"type": "dict", "options": {"client_secret": {"type": "str"}}}}, ["auth.client_secret"]),
    ({"url": {"type": "str", "aliases": ["bearer_token"]}}, ["url"]),
    ({"etcd_client_key": {"type": "path", "no_log": False}, "db_password": {"type": "str", "no_log": True}}, []),
    ({"keyring_name": {"type": "str"}, "monkey": {"type": "str"}}, []),
])
def test_the_audit_finds_secret_options_that_are_logged(spec, found):
    assert secret_options_not_hidden(spec) == found
