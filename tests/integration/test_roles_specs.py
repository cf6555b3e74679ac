# Copyright: (c) 2026, hpc_boot.bss developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every role's meta/argument_specs.yml stays in step with its defaults/main.yml.

The same check prometheus.prometheus runs in CI: the two key sets are equal, each default has the
declared type, and every option is described. A role whose spec drifts from its defaults would
validate the wrong variables, or document ones that do not exist.
"""
import os

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES_DIR = os.path.join(REPO, "roles")
ROLES = sorted(name for name in os.listdir(ROLES_DIR) if os.path.isfile(os.path.join(ROLES_DIR, name, "defaults", "main.yml")))
PYTHON_TYPES = {"bool": (bool,), "int": (int,), "list": (list,), "dict": (dict,), "str": (str,), "path": (str,)}


def load(role, *parts):
    with open(os.path.join(ROLES_DIR, role, *parts), encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


@pytest.mark.parametrize("role", ROLES)
def test_argument_spec_keys_match_defaults(role):
    defaults = load(role, "defaults", "main.yml")
    options = load(role, "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert sorted(set(defaults) - set(options)) == [], f"{role}: defaults without an argument spec"
    assert sorted(set(options) - set(defaults)) == [], f"{role}: argument specs without a default"


@pytest.mark.parametrize("role", ROLES)
def test_defaults_have_the_declared_type_and_a_description(role):
    defaults = load(role, "defaults", "main.yml")
    options = load(role, "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    for name, spec in options.items():
        assert spec.get("description"), f"{role}: {name} has no description"
        value = defaults.get(name)
        if isinstance(value, str) and "{{" in value:
            continue  # a template, resolved at run time
        expected = PYTHON_TYPES.get(spec.get("type", "str"))
        if expected and value is not None:
            assert isinstance(value, expected) and not (spec.get("type") == "int" and isinstance(value, bool)), \
                f"{role}: {name} default {value!r} is not of type {spec.get('type', 'str')}"
        if "choices" in spec and value is not None:
            chosen = value if isinstance(value, list) else [value]  # for lists, choices apply to the elements
            assert all(item in spec["choices"] for item in chosen), f"{role}: {name} default {value!r} not in {spec['choices']}"


@pytest.mark.parametrize("role", ROLES)
def test_public_variables_carry_the_role_prefix(role):
    defaults = load(role, "defaults", "main.yml")
    assert [name for name in defaults if not name.startswith(role + "_")] == []
