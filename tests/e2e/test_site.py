"""playbooks/site.yml on the lab: inventory from the SMD double, BSS on the adopted PostgreSQL, gateway, boot config.

Run twice: the second run changes nothing, and every node of a declared group boots its group's declaration
through the gateway, by MAC (as iPXE asks) and by xname.
"""

import os
import re

import pytest

from hpclab import cli, procs, site_lab


@pytest.fixture
def site(bss_impl):
    """The lab and the site inventory; the bss role deploys the double, then the real upstream BSS (bss_impl)."""
    state_dir = procs.make_workdir("e2e-site")
    prepared = None
    try:
        cli.up(state_dir, nodes=16, vm=False, out=lambda *_a, **_k: None, bss=bss_impl)
        prepared = site_lab.write_inventory(state_dir, bss=bss_impl)
        prepared["log"] = os.path.join(state_dir, "ansible.log")
        yield prepared
    finally:
        if prepared:
            site_lab.remove(prepared)
        cli.down(state_dir, out=lambda *_a, **_k: None)
        procs.shutil.rmtree(state_dir, ignore_errors=True)


def recap(stdout):
    return {host: dict((key, int(value)) for key, value in re.findall(r"(\w+)=(\d+)", rest))
            for host, rest in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", stdout, re.M)}


# The real upstream BSS only: molecule's site scenario runs the same site.yml twice on the lab's double.
@pytest.mark.parametrize("bss_impl", ["upstream"], indirect=True)
def test_site_converges_then_changes_nothing_and_nodes_boot_their_group(site):
    first = site_lab.run_site(site, log=site["log"])
    assert first.returncode == 0, first.stdout[-5000:]
    assert recap(first.stdout)["localhost"]["changed"] > 0

    second = site_lab.run_site(site, log=site["log"])
    assert second.returncode == 0, second.stdout[-5000:]
    assert all(counts["changed"] == 0 for counts in recap(second.stdout).values()), second.stdout[-3000:]

    check = site_lab.run_site(site, "--check", "--diff", log=site["log"])
    assert check.returncode == 0 and all(counts["changed"] == 0 for counts in recap(check.stdout).values())

    checked, problems = site_lab.node_mismatches(site)
    assert problems == []
    assert checked >= 2 * 13, "every compute and login node was checked by MAC and by xname"
