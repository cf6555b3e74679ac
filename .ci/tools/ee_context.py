"""Build the execution environment's build context for hpc_boot.bss with ansible-builder (no container engine).

Usage: ee_context.py TARBALL OUTDIR

Writes OUTDIR/execution-environment.yml (ansible-builder v3) that installs the built collection TARBALL,
runs ``ansible-builder create`` into OUTDIR/context, then checks what the image would get: ansible-builder's
own introspection script (copied into the context) is run on the collection installed from TARBALL, and
it must report every package of the collection's requirements.txt and bindep.txt, found through
meta/execution-environment.yml. Exits non-zero, naming what is missing, otherwise.
"""

import os
import re
import shutil
import subprocess
import sys
import tarfile

import yaml

BASE_IMAGE = "quay.io/fedora/fedora:42"


def requirement_lines(text):
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def definition(tarball_name):
    return {
        "version": 3,
        "images": {"base_image": {"name": BASE_IMAGE}},
        "options": {"package_manager_path": "/usr/bin/dnf"},
        "dependencies": {
            "python_interpreter": {"package_system": "python3", "python_path": "/usr/bin/python3"},
            "ansible_core": {"package_pip": "ansible-core>=2.17,<2.20"},
            "ansible_runner": {"package_pip": "ansible-runner>=2.3,<3"},
            "galaxy": {"collections": [{"name": f"/build/collections/{tarball_name}", "type": "file"}]},
        },
        "additional_build_files": [{"src": tarball_name, "dest": "collections"}],
        "additional_build_steps": {"prepend_base": ["RUN $PKGMGR install -y python3-pip && $PKGMGR clean all"]},
    }


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    tarball, outdir = os.path.abspath(argv[1]), os.path.abspath(argv[2])
    if not os.path.isfile(tarball):
        sys.exit(f"ee_context: collection tarball {tarball} not found (run make build)")
    shutil.rmtree(outdir, ignore_errors=True)
    os.makedirs(outdir)
    name = os.path.basename(tarball)
    shutil.copy2(tarball, os.path.join(outdir, name))
    with open(os.path.join(outdir, "execution-environment.yml"), "w", encoding="utf-8") as handle:
        handle.write("---\n")
        yaml.safe_dump(definition(name), handle, sort_keys=False)
    bindir = os.path.dirname(sys.executable)
    subprocess.run([os.path.join(bindir, "ansible-builder"), "create", "-f", "execution-environment.yml",
                    "-c", "context", "--output-filename", "Containerfile", "-v", "1"], cwd=outdir, check=True)
    context = os.path.join(outdir, "context")
    missing = [path for path in ("Containerfile", "_build/scripts/introspect.py", "_build/scripts/assemble",
                                 f"_build/collections/{name}") if not os.path.exists(os.path.join(context, path))]
    if missing:
        sys.exit(f"ee_context: ansible-builder create left out {', '.join(missing)}")

    # What the image's build would install for this collection: introspect the installed tarball.
    installed = os.path.join(outdir, "installed")
    # --force: the checkout may itself be on ANSIBLE_COLLECTIONS_PATH, and then galaxy would install nothing.
    subprocess.run([os.path.join(bindir, "ansible-galaxy"), "collection", "install", "--offline", "--force", "-p",
                    installed, tarball], check=True, capture_output=True, text=True)
    found = subprocess.run([sys.executable, os.path.join(context, "_build", "scripts", "introspect.py"), "introspect",
                            installed], check=True, capture_output=True, text=True).stdout
    with tarfile.open(tarball) as archive:
        members = archive.getnames()
        wanted = []
        for member in ("requirements.txt", "bindep.txt"):
            if member not in members:
                sys.exit(f"ee_context: {member} is not in {name}")
            wanted += requirement_lines(archive.extractfile(member).read().decode("utf-8"))
    if "meta/execution-environment.yml" not in members:
        sys.exit(f"ee_context: meta/execution-environment.yml is not in {name}")
    # ansible-builder drops what ansible-core itself brings (PyYAML among others): no need to find those.
    sys.path.insert(0, os.path.join(context, "_build", "scripts"))
    from introspect import EXCLUDE_REQUIREMENTS  # pylint: disable=import-outside-toplevel,import-error
    absent = [line for line in wanted if line not in found
              and re.split(r"[\[<>=!~ ;]", line, maxsplit=1)[0].lower() not in EXCLUDE_REQUIREMENTS]
    if absent:
        sys.exit("ee_context: ansible-builder's introspection did not find %s in:\n%s" % (", ".join(absent), found))
    print(f"ee_context: build context in {context}; introspection of the installed collection finds its requirements:")
    print(found)


if __name__ == "__main__":
    main(sys.argv)
