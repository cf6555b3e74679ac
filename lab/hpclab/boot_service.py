"""Start the real boot-service (OpenCHAMI 0.2's successor to BSS) for tests and the lab.

There is no double: every test of the boot-service side runs the upstream binary that ``hpclab.upstream``
installs (``make upstream``) at the version pinned in lab/upstream.mk. It stores its resources as files in the
work directory and always gets its own config file there (``--config``), so a ``/etc/boot-service/config.yaml``
left on the machine by a role test never leaks into a lab instance.
"""

import json
import os
import urllib.request

from hpclab import procs

LOOPBACK = procs.LOOPBACK


def binary():
    """The installed boot-service binary; LabError saying how to install it if it is not there."""
    from hpclab import upstream  # pylint: disable=import-outside-toplevel
    manifest, reason = upstream.availability("boot-service")
    if manifest is None:
        raise procs.LabError(reason)
    return manifest["boot_service"]


def config_text(port, data_dir, hsm_url=None, hsm_sync=False, legacy_api=True):
    """boot-service's config.yaml (the keys cmd/server reads), as OpenCHAMI writes it."""
    lines = [
        f"port: {port}",
        f"host: {json.dumps(LOOPBACK)}",
        f"data_dir: {json.dumps(data_dir)}",
        'storage_type: "file"',
        f"enable_legacy_api: {'true' if legacy_api else 'false'}",
        "enable_auth: false",
        "enable_metrics: false",
        f"hsm_url: {json.dumps(hsm_url or '')}",
        f"hsm_sync_enabled: {'true' if hsm_sync else 'false'}",
    ]
    return "\n".join(lines) + "\n"


def start_boot_service(workdir=None, name="boot-service", hsm_url=None, hsm_sync=False, legacy_api=True,
                       port=None, binary_path=None):
    """boot-service on a free loopback port with file storage in ``workdir/data``; a procs.Service.

    ``hsm_url`` makes it resolve nodes through SMD (the lab's SMD double or a real one); without it, nodes must be
    declared as Node resources. ``hsm_sync`` turns on its background SMD sync (off by default: tests want to
    see only what they wrote). ``service.extra`` holds ``data_dir`` and ``config``.
    """
    argv0 = binary_path or binary()
    workdir = workdir or procs.make_workdir(name)
    port = port or procs.free_port()
    data_dir = os.path.join(workdir, "data")
    os.makedirs(data_dir, exist_ok=True)
    config = os.path.join(workdir, "config.yaml")
    with open(config, "w", encoding="utf-8") as handle:
        handle.write(config_text(port, data_dir, hsm_url, hsm_sync, legacy_api))
    argv = [argv0, "serve", "--config", config, "--host", LOOPBACK, "--port", str(port), "--data-dir", data_dir]
    proc, log = procs.spawn(name, argv, workdir)
    service = procs.Service(name, proc.pid, port, workdir, log,
                            {"url": f"http://{LOOPBACK}:{port}", "data_dir": data_dir, "config": config,
                             "hsm_url": hsm_url or ""})
    return procs._started(  # pylint: disable=protected-access
        service, proc, lambda: procs.wait_for_http(f"http://{LOOPBACK}:{port}/bootconfigurations", proc=proc))


def resources(url, kind):
    """Every resource of ``kind`` (bootconfigurations, nodes, bmcs) boot-service at ``url`` holds."""
    with urllib.request.urlopen(f"{url}/{kind}", timeout=10) as answer:  # nosec - loopback lab URL
        return json.load(answer)
