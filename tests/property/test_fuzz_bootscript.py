"""Fuzzing the bootscript parser (bootscript_parse) and the reading of BSS answers and declarations
(bootparams_model): any text or JSON gives a result or a BootParamsError naming the field, never another
exception (issue 14)."""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ansible_collections.hpc_boot.bss.plugins.module_utils import bootparams_model as model
from ansible_collections.hpc_boot.bss.plugins.module_utils import bootscript_parse, ipxe_line

from fuzzing import fuzz_settings, json_values, objects

LINES = ["#!ipxe", "kernel --name kernel http://h/k a=1 || goto boot_retry", "initrd --name initrd http://h/i || goto boot_retry",
         "boot || goto boot_retry", ":boot_retry", "sleep 30", "chain http://h/boot/v1/bootscript?mac=a&retry=1&ts=2",
         "kernel --name kernel ", "initrd --name initrd ", "sleep ", "chain ", "kernel --name kernel k #x", "", " ", "\r",
         "chain ?&&retry=&ts", "kernel --name kernel k ds=nocloud-net;s=http://x/ bss_referral_token=t"]
scripts = st.one_of(st.lists(st.one_of(st.sampled_from(LINES), st.text(max_size=30)), max_size=9).map("\n".join),
                    st.text(max_size=200), st.none())
ENTRY = ["hosts", "macs", "nids", "kernel", "initrd", "params", "cloud-init"]


@fuzz_settings()
@given(first=scripts, second=scripts)
@example(first="#!ipxe\nkernel --name kernel", second=None)
def test_bootscript_parser_never_raises(first, second):
    parsed = [bootscript_parse.parse_script(text) for text in (first, second)]
    for one in parsed:
        assert set(one) == {"kind", "kernel", "initrd", "params", "retry_delay", "chain"}
        assert one["kind"] in ("boot", "wait", "other") and all(isinstance(value, str) for value in one.values())
    stable = [bootscript_parse.normalise(one) for one in parsed]
    row = bootscript_parse.parity_row("x1", stable[0], stable[1])
    assert row["same"] == (row["differences"] == [])
    assert bootscript_parse.compare(stable[0], stable[0]) == []
    problems = bootscript_parse.structure_problems(first)
    assert isinstance(problems, list) and all(isinstance(problem, str) for problem in problems)
    if not problems:
        assert parsed[0]["kind"] == "boot"
    for line in (first or "").split("\n"):
        for argv, operator in ipxe_line.commands(line):
            assert operator in ipxe_line.OPERATORS + (None,) and all(word.strip(" \t\n\v\f\r") for word in argv)


@fuzz_settings()
@given(raw=st.one_of(objects(model.DECLARATION_FIELDS + ("cloud-init",)), json_values(6)),
       require_kernel=st.booleans())
def test_declarations_are_accepted_or_refused_naming_a_field(raw, require_kernel):
    try:
        declaration = model.parse_declaration(raw, require_kernel=require_kernel)
    except model.BootParamsError as exc:
        assert str(exc).startswith("declarations[0]")
        return
    assert declaration.labels and all(isinstance(label, str) for label in declaration.labels)
    assert all(isinstance(value, str) for value in declaration.config)
    assert ipxe_line.params_problem(declaration.config.params) is None


@fuzz_settings()
@given(entries=st.one_of(st.lists(objects(ENTRY), max_size=4), json_values(6)))
# crashers (TypeError, AttributeError) and wrongly typed results the fuzzer found, kept as regressions
@example(entries=[{"hosts": "a4:bf:01:3e:1f:a0", "kernel": "1", "cloud-init": "x3000c0s1b0n0"}])
@example(entries=[{"hosts": "x3000c0s1b0n0", "params": [None]}])
@example(entries=[{"hosts": "", "kernel": 1.0}])
@example(entries=[{"hosts": "x3000c0s1b0n0", "kernel": 1.0}])
@example(entries=[{"hosts": [1]}])
@example(entries=[{"nids": 1}])
@example(entries=[{"macs": 1}])
@example(entries=[{"hosts": True}])
@example(entries=1)
def test_bss_answers_are_read_without_exceptions(entries):
    """GET /boot/v1/bootparameters as BSS (or something in its place) answered it."""
    try:
        nodes, cloud_init, images = model.current_nodes(entries)
    except model.BootParamsError as exc:
        assert str(exc)
        return
    for label, configs in nodes.items():
        assert isinstance(label, str) and label
        assert all(isinstance(value, str) for config in configs for value in config)
    assert all(isinstance(label, str) for label in cloud_init)
    assert all(isinstance(image["kernel"], str) for image in images)
    model.entries_by_config(nodes)


@pytest.mark.parametrize("entries, message", [
    ([{"hosts": "x3000c0s1b0n0", "kernel": "k"}], "BSS answer entry 0.hosts: 'x3000c0s1b0n0' is not a list of strings"),
    ([{"hosts": ["x1"], "kernel": 1.0}], "BSS answer entry 0.kernel: 1.0 is not a string"),
    ({"detail": "proxy error"}, "BSS answered {'detail': 'proxy error'}, not a list"),
])
def test_malformed_bss_answers_name_the_field(entries, message):
    with pytest.raises(model.BootParamsError) as error:
        model.current_nodes(entries)
    assert str(error.value).startswith(message)
