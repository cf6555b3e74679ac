# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The small wrapper every BSS module uses: shared connection argument_spec, client, backend detection.

Modules build a :class:`BssModule`, do their work in a function that raises typed errors, and call
:meth:`BssModule.run` which turns :class:`BssApiError`, :class:`BootParamsError` and
:class:`PlanError` into one ``fail_json`` with the cause.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.hpc_boot.bss.plugins.module_utils.bootparams_model import BootParamsError
from ansible_collections.hpc_boot.bss.plugins.module_utils.bootparams_plan import PlanError
from ansible_collections.hpc_boot.bss.plugins.module_utils.bss_client import (
    HAS_REQUESTS,
    REQUESTS_IMPORT_ERROR,
    BssApiError,
    BssClient,
    resolve_token,
)

STORAGE_STATUS = "storage/status"


def bss_argument_spec():
    """A fresh copy of the connection options documented in the ``hpc_boot.bss.bss_api`` doc fragment."""
    return dict(
        url=dict(type="str", required=True, fallback=(env_fallback, ["BSS_URL"])),
        token=dict(type="str", no_log=True, fallback=(env_fallback, ["BSS_TOKEN"])),
        cluster=dict(type="str"),
        validate_certs=dict(type="bool", default=True),
        ca_path=dict(type="path"),
        timeout=dict(type="float", default=30.0),
        retries=dict(type="int", default=3),
        backend=dict(type="str", default="auto", choices=["auto", "etcd", "postgres"]),
    )


def detect_backend(client):
    """'etcd' or 'postgres' from ``/boot/v1/service/storage/status``; BssApiError if BSS does not say."""
    status, body = client.service(STORAGE_STATUS)
    backend = ((body or {}).get("bss-storage-backend") or {}) if isinstance(body, dict) else {}
    name = backend.get("name")
    if name not in ("etcd", "postgres"):
        raise BssApiError("GET %s/boot/v1/service/%s (HTTP %s) did not name the storage backend (%r); set backend=etcd or "
                          "backend=postgres" % (client.base_url, STORAGE_STATUS, status, body))
    return name


class BssModule(object):
    """AnsibleModule by composition, plus the BSS client built from the shared options."""

    def __init__(self, argument_spec, **kwargs):
        spec = bss_argument_spec()
        spec.update(argument_spec)
        self.module = AnsibleModule(argument_spec=spec, **kwargs)
        if not HAS_REQUESTS:
            self.module.fail_json(msg=missing_required_lib("requests"), exception=str(REQUESTS_IMPORT_ERROR))
        self.params = self.module.params
        self._client = None
        self._backend = None

    @property
    def check_mode(self):
        return self.module.check_mode

    @property
    def diff_mode(self):
        return self.module._diff

    @property
    def client(self):
        if self._client is None:
            params = self.params
            self._client = BssClient(params["url"], token=resolve_token(params["token"], params["cluster"]),
                                     validate_certs=params["validate_certs"], ca_path=params["ca_path"],
                                     timeout=params["timeout"], retries=params["retries"])
        return self._client

    @property
    def backend(self):
        if self._backend is None:
            chosen = self.params["backend"]
            self._backend = detect_backend(self.client) if chosen == "auto" else chosen
        return self._backend

    def warn(self, message):
        self.module.warn(message)

    def run(self, work):
        """Call ``work(self)`` which returns the result dict; the one place that fails the task."""
        try:
            result = work(self)
        except (BssApiError, BootParamsError, PlanError) as exc:
            extra = {}
            if self._client is not None and self._client.sent:
                extra["requests"] = self._client.sent
            self.module.fail_json(msg=str(exc), **extra)
        self.module.exit_json(**result)
