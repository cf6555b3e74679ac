#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: etcd_snapshot
short_description: Save a verified etcd snapshot of an etcd-mode BSS, with a checksum sidecar
version_added: 0.1.0
description:
  - Streams an etcd snapshot (python3-etcd3) into a temporary file next to O(path), fsyncs it and renames it
    into place, so O(path) is either absent or complete.
  - Writes a JSON sidecar C(<path>.json) with the sha256, the size, the etcd revision of the snapshot and the
    number of keys under each BSS prefix (C(/params/), C(/kernel/), C(/initrd/), C(/endpoint-access/)).
    The revision is what M(hpc_boot.bss.import_bootparams) needs as O(hpc_boot.bss.import_bootparams#module:since_revision)
    for the freeze-and-sync step.
  - Verifies the snapshot with C(etcdctl snapshot status) when available, or by restoring it into a throwaway
    etcd on a loopback port and counting its keys.
  - Idempotent per file name - an existing snapshot whose sidecar checksum matches is left alone unless O(force=true).
author:
  - hpc_boot.bss contributors (@hpc-boot)
extends_documentation_fragment:
  - hpc_boot.bss.etcd
attributes:
  check_mode:
    support: full
    description: Reports whether a snapshot would be taken; contacts etcd only to check it answers.
  diff_mode:
    support: none
    description: A snapshot is a new file; there is nothing to compare.
options:
  path:
    description: Snapshot file to write. Its directory must exist.
    type: path
    required: true
  force:
    description: Take a new snapshot even if O(path) already holds a valid one.
    type: bool
    default: false
  verify:
    description:
      - How to verify the snapshot after writing it (and an existing one before reusing it).
      - V(auto) uses C(etcdctl snapshot status) if C(etcdctl) is installed, else V(restore).
      - V(restore) restores it into a throwaway etcd on a loopback port and compares the BSS key counts.
    type: str
    choices: [auto, etcdctl, restore, none]
    default: auto
'''

EXAMPLES = r'''
- name: Back up BSS's etcd before the cutover
  hpc_boot.bss.etcd_snapshot:
    etcd_host: etcd.cluster.local
    path: /var/backups/bss/etcd-before-cutover.db
  register: snapshot

- name: Later, import what changed since that snapshot
  hpc_boot.bss.import_bootparams:
    etcd_host: etcd.cluster.local
    smd_url: https://smd.cluster.local
    db_password: "{{ bss_db_password }}"
    since_revision: "{{ snapshot.revision }}"
    mode: merge
    strict: false
'''

RETURN = r'''
path:
  description: The snapshot file.
  returned: always
  type: str
sidecar:
  description: Path of the JSON sidecar.
  returned: always
  type: str
sha256:
  description: sha256 of the snapshot file.
  returned: when a snapshot exists after the run
  type: str
revision:
  description: etcd revision the snapshot holds.
  returned: when a snapshot exists after the run
  type: int
key_counts:
  description: Number of keys per BSS prefix in the snapshot.
  returned: when a snapshot exists after the run
  type: dict
  sample: {"/params/": 300, "/kernel/": 6, "/initrd/": 5, "/endpoint-access/": 290}
verified_with:
  description: How the snapshot was verified (etcdctl, restore or none).
  returned: when a snapshot exists after the run
  type: str
'''

import datetime
import hashlib
import json
import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.hpc_boot.bss.plugins.module_utils import etcd_source


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomically(path, write):
    """Write through ``write(fileobj)`` into a temporary file beside ``path``, fsync, rename, fsync the directory."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".part", dir=directory)
    try:
        with os.fdopen(handle, "wb") as fileobj:
            write(fileobj)
            fileobj.flush()
            os.fsync(fileobj.fileno())
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def verify_snapshot(path, method, expected_counts=None):
    """``(method used, revision, key counts or None)``; raises EtcdSourceError when the file is not a valid snapshot."""
    if method == "none":
        return "none", None, None
    if method in ("auto", "etcdctl") and shutil.which("etcdctl"):
        status = etcd_source.etcdctl_status(path)
        return "etcdctl", int(status["revision"]), None
    if method == "etcdctl":
        raise etcd_source.EtcdSourceError("verify=etcdctl but etcdctl is not installed")
    with etcd_source.ThrowawayEtcd(path) as throwaway:
        client = etcd_source.connect(throwaway.connection_params())
        try:
            kvs, revision, _mods = etcd_source.read_bss_keys(client, keys_only=True)
        finally:
            client.close()
    counts = etcd_source.count_by_prefix(kvs)
    if expected_counts is not None and counts != expected_counts:
        raise etcd_source.EtcdSourceError("restored snapshot '%s' holds %s keys, expected %s" % (path, counts, expected_counts))
    return "restore", revision, counts


def existing_snapshot(path, sidecar, method):
    """The sidecar of a valid existing snapshot, or None when there is nothing reusable."""
    if not (os.path.isfile(path) and os.path.isfile(sidecar)):
        return None
    with open(sidecar, encoding="utf-8") as handle:
        info = json.load(handle)
    actual = sha256_of(path)
    if actual != info.get("sha256"):
        raise etcd_source.EtcdSourceError("snapshot '%s' does not match its sidecar (sha256 %s, sidecar says %s); "
                                          "set force=true to replace it" % (path, actual, info.get("sha256")))
    verify_snapshot(path, method, info.get("key_counts"))
    return info


def take_snapshot(params, path, sidecar):
    client = etcd_source.connect(params)
    try:
        write_atomically(path, client.snapshot)
        method, revision, counts = verify_snapshot(path, params["verify"])
        if counts is None:
            if revision is None:
                _keys, revision, _mods = etcd_source.read_bss_keys(client, keys_only=True)
            kvs, _rev, _mods = etcd_source.read_bss_keys(client, revision=revision, keys_only=True)
            counts = etcd_source.count_by_prefix(kvs)
    finally:
        client.close()
    info = {"file": os.path.basename(path), "sha256": sha256_of(path), "size": os.path.getsize(path),
            "revision": revision, "key_counts": counts, "verified_with": method,
            "etcd_endpoint": "%s:%s" % (params["etcd_host"], params["etcd_port"]),
            "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    write_atomically(sidecar, lambda fileobj: fileobj.write(json.dumps(info, indent=2, sort_keys=True).encode("utf-8") + b"\n"))
    return info


def main():
    argument_spec = dict(
        path=dict(type="path", required=True),
        force=dict(type="bool", default=False),
        verify=dict(type="str", choices=["auto", "etcdctl", "restore", "none"], default="auto"),
    )
    argument_spec.update(etcd_source.etcd_argument_spec())
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not etcd_source.HAS_ETCD3:
        module.fail_json(msg=missing_required_lib("etcd3 (python3-etcd3)"), exception=etcd_source.ETCD3_IMPORT_ERROR)
    path = module.params["path"]
    sidecar = path + ".json"
    result = {"path": path, "sidecar": sidecar}
    try:
        if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise etcd_source.EtcdSourceError("directory of path '%s' does not exist" % path)
        info = None if module.params["force"] else existing_snapshot(path, sidecar, module.params["verify"])
        if info is not None:
            module.exit_json(changed=False, **dict(result, **_public(info)))
        if module.check_mode:
            etcd_source.connect(module.params).close()
            module.exit_json(changed=True, **result)
        info = take_snapshot(module.params, path, sidecar)
    except (etcd_source.EtcdSourceError, OSError, ValueError) as exc:
        module.fail_json(msg="Failed to save etcd snapshot '%s': %s" % (path, exc), **result)
    module.exit_json(changed=True, **dict(result, **_public(info)))


def _public(info):
    return {key: info[key] for key in ("sha256", "revision", "key_counts", "verified_with") if key in info}


if __name__ == "__main__":
    main()
