"""Render the collection's module, plugin and role docs to HTML with antsibull-docs and Sphinx, offline.

Usage: docs_site.py OUTDIR   (hpc_boot.bss must be on ANSIBLE_COLLECTIONS_PATH; ``make docs`` sets that up)

``antsibull-docs sphinx-init`` writes a fresh Sphinx project to OUTDIR, and its ``build.sh`` renders the RST and
runs ``sphinx-build -W`` (any warning fails). The generated pages link to the Ansible documentation
(return values, configuration settings, ANSIBLE_* variables) through intersphinx, which would download
docs.ansible.com's inventory; this machine has no access there, so a small local inventory with those
targets and their docs.ansible.com addresses stands in. The HTML lands in OUTDIR/build/html.
"""

import os
import shutil
import subprocess
import sys
import zlib

ANSIBLE_DOCS = "https://docs.ansible.com/projects/ansible/devel/"
# Labels the antsibull-docs templates refer to (and the page of docs.ansible.com each one is on).
LABELS = {
    "common_return_values": ("reference_appendices/common_return_values.html#common-return-values", "Return Values"),
    "ansible_configuration_settings": ("reference_appendices/config.html#ansible-configuration-settings",
                                       "Ansible Configuration Settings"),
    "collections_keyword": ("collections_guide/collections_using_playbooks.html", "Using collections in playbooks"),
    "list_of_collections": ("collections/index.html", "Collection Index"),
    "list_of_callback_plugins": ("collections/index_callback.html", "Index of all Callback Plugins"),
    "callback_plugins": ("plugins/callback.html", "Callback plugins"),
    "action_plugins": ("plugins/action.html", "Action plugins"),
}


def ansible_envvars():
    """Every ANSIBLE_* variable of ansible-core's configuration (the cache plugin's included)."""
    from ansible.config.manager import ConfigManager  # pylint: disable=import-outside-toplevel
    names = set()
    for definition in ConfigManager().get_configuration_definitions().values():
        names.update(entry["name"] for entry in definition.get("env", []) or [])
    return sorted(names)


def write_inventory(path):
    lines = [f"{label} std:label -1 {uri} {title}" for label, (uri, title) in LABELS.items()]
    lines += [f"{name} std:envvar 1 reference_appendices/config.html#envvar-$ -" for name in ansible_envvars()]
    header = ("# Sphinx inventory version 2\n# Project: Ansible\n# Version: devel\n"
              "# The remainder of this file is compressed using zlib.\n")
    with open(path, "wb") as handle:
        handle.write(header.encode("utf-8"))
        handle.write(zlib.compress(("\n".join(lines) + "\n").encode("utf-8")))


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    outdir = os.path.abspath(argv[1])
    shutil.rmtree(outdir, ignore_errors=True)
    os.makedirs(outdir)
    subprocess.run(["antsibull-docs", "sphinx-init", "--use-current", "--fail-on-error", "--squash-hierarchy",
                    "--dest-dir", outdir, "--project", "hpc_boot.bss", "--copyright", "hpc_boot.bss developers",
                    "hpc_boot.bss"], check=True, stdout=subprocess.DEVNULL)
    write_inventory(os.path.join(outdir, "ansible_devel.inv"))
    with open(os.path.join(outdir, "conf.py"), "a", encoding="utf-8") as handle:
        handle.write("\n# Offline: docs.ansible.com's targets from a local inventory (.ci/tools/docs_site.py).\n"
                     f"intersphinx_mapping = {{'ansible_devel': ('{ANSIBLE_DOCS}', '{outdir}/ansible_devel.inv')}}\n")
    subprocess.run(["bash", os.path.join(outdir, "build.sh")], check=True)
    index = os.path.join(outdir, "build", "html", "index.html")
    if not os.path.isfile(index):
        sys.exit(f"docs_site: no {index}")
    print(f"docs_site: open {index}")


if __name__ == "__main__":
    main(sys.argv)
