# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The small wrapper of modules that talk to boot-service: shared connection options, the client, one fail_json.

The options are those of the ``hpc_boot.bss.boot_service_api`` doc fragment. :meth:`BootServiceModule.run`
turns :class:`BootServiceError`, :class:`BootServiceDeclarationError` and :class:`PlanError` into one
``fail_json`` that keeps the cause and lists the writes already sent.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.hpc_boot.bss.plugins.module_utils.boot_service_client import (
    HAS_REQUESTS,
    REQUESTS_IMPORT_ERROR,
    BootServiceClient,
    BootServiceError,
)
from ansible_collections.hpc_boot.bss.plugins.module_utils.boot_service_model import BootServiceDeclarationError
from ansible_collections.hpc_boot.bss.plugins.module_utils.boot_service_plan import PlanError


def boot_service_argument_spec():
    """A fresh copy of the connection options documented in the ``hpc_boot.bss.boot_service_api`` doc fragment."""
    return dict(
        url=dict(type="str", required=True, fallback=(env_fallback, ["BOOT_SERVICE_URL"])),
        token=dict(type="str", no_log=True, fallback=(env_fallback, ["BOOT_SERVICE_TOKEN"])),
        validate_certs=dict(type="bool", default=True),
        ca_path=dict(type="path"),
        timeout=dict(type="float", default=30.0),
        retries=dict(type="int", default=3),
    )


class BootServiceModule(object):
    """AnsibleModule by composition, plus the boot-service client built from the shared options."""

    def __init__(self, argument_spec, **kwargs):
        spec = boot_service_argument_spec()
        spec.update(argument_spec)
        self.module = AnsibleModule(argument_spec=spec, **kwargs)
        if not HAS_REQUESTS:
            self.module.fail_json(msg=missing_required_lib("requests"), exception=str(REQUESTS_IMPORT_ERROR))
        self.params = self.module.params
        self._client = None

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
            self._client = BootServiceClient(params["url"], token=params["token"], validate_certs=params["validate_certs"],
                                             ca_path=params["ca_path"], timeout=params["timeout"], retries=params["retries"])
        return self._client

    def warn(self, message):
        self.module.warn(message)

    def run(self, work):
        """Call ``work(self)`` which returns the result dict; the one place that fails the task."""
        try:
            result = work(self)
        except (BootServiceError, BootServiceDeclarationError, PlanError) as exc:
            extra = {}
            if self._client is not None and self._client.sent:
                extra["requests"] = self._client.sent
            self.module.fail_json(msg=str(exc), **extra)
        self.module.exit_json(**result)
