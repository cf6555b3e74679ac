# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:  # pylint: disable=too-few-public-methods
    """Connection options for the etcd that holds an etcd-mode BSS's records."""

    DOCUMENTATION = r'''
options:
  etcd_host:
    description: Host name or address of an etcd member (BSS's C(ETCD_HOST)).
    type: str
    default: localhost
  etcd_port:
    description: Client port of that member (BSS's C(ETCD_PORT)).
    type: int
    default: 2379
  etcd_ca_cert:
    description:
      - CA certificate to verify etcd's TLS certificate. Setting it enables TLS, and etcd's certificate is then
        always verified against this CA and its name against O(etcd_host); there is no unverified TLS mode.
      - Without it the connection is plain text; a failure to reach an etcd that serves TLS says to set it.
    type: path
  etcd_client_cert:
    description: Client certificate for etcd TLS client authentication (with O(etcd_client_key)).
    type: path
  etcd_client_key:
    description: Private key of O(etcd_client_cert).
    type: path
  etcd_user:
    description: etcd user name when etcd authentication is enabled.
    type: str
  etcd_password:
    description: Password of O(etcd_user). Never logged.
    type: str
  etcd_timeout:
    description: Seconds allowed for each etcd call.
    type: int
    default: 30
requirements:
  - python3-etcd3 (C(import etcd3))
'''
