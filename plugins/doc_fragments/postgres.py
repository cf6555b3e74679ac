# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:  # pylint: disable=too-few-public-methods
    """Connection options shared by the modules that use BSS's PostgreSQL database."""

    DOCUMENTATION = r'''
options:
  db_host:
    description: Host name or address of the PostgreSQL server (or a Unix socket directory).
    type: str
    default: localhost
  db_port:
    description: TCP port of the PostgreSQL server.
    type: int
    default: 5432
  db_name:
    description: Database that holds (or will hold) the BSS tables.
    type: str
    default: bssdb
  db_user:
    description: Role to connect as; BSS's own default is C(bssuser).
    type: str
    default: bssuser
  db_password:
    description: Password of O(db_user). Never logged.
    type: str
  db_sslmode:
    description:
      - libpq C(sslmode). The default, C(verify-full), like upstream BSS unless C(BSS_INSECURE=true), needs a
        server that offers TLS with a certificate signed by O(db_sslrootcert) (or libpq's default
        C(~/.postgresql/root.crt)) and naming O(db_host).
      - A server that does not offer TLS is refused with a message saying so; set C(disable) only where
        plain text to that server is acceptable (a lab, a Unix socket, a loopback address).
    type: str
    default: verify-full
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
  db_sslrootcert:
    description: CA certificate file used to verify the server with C(verify-ca) or C(verify-full) (the default).
    type: path
  db_connect_timeout:
    description: Seconds to wait for the connection.
    type: int
    default: 10
requirements:
  - psycopg >= 3
'''
