# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The site scenario's lab: ``start REPO STATE``, ``converge REPO STATE``, ``check REPO STATE``, ``stop REPO STATE``.

start brings the lab up and writes the site inventory (prints its facts as JSON); converge runs site.yml and
prints JSON with the inner run's changed count; check asks the gateway for every declared node's boot script;
stop removes the units site.yml started and the lab.
"""

import json
import os
import re
import sys


def main():
    action, repo, state = sys.argv[1:4]
    sys.path.insert(0, os.path.join(repo, "lab"))
    from hpclab import cli, procs, site_lab  # pylint: disable=import-outside-toplevel
    facts = os.path.join(state, "site-facts.json")
    if action == "start":
        os.makedirs(state, exist_ok=True)
        os.chmod(state, 0o755)
        cli.up(state, nodes=16, vm=False, out=lambda *_a, **_k: None)
        prepared = site_lab.write_inventory(state)
        with open(facts, "w", encoding="utf-8") as handle:
            json.dump(prepared, handle)
        print(json.dumps({"inventory": prepared["inventory"], "gateway_url": prepared["gateway_url"]}))
        return 0
    with open(facts, encoding="utf-8") as handle:
        prepared = json.load(handle)
    if action == "converge":
        result = site_lab.run_site(prepared, log=os.path.join(state, "ansible.log"))
        changed = sum(int(n) for n in re.findall(r"\bchanged=(\d+)", result.stdout))
        print(json.dumps({"rc": result.returncode, "changed": changed, "tail": result.stdout[-3000:]}))
        return result.returncode
    if action == "check":
        return site_lab.check_nodes(prepared)
    site_lab.remove(prepared)
    cli.down(state, out=lambda *_a, **_k: None)
    procs.shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
