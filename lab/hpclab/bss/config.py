"""Settings of the BSS double, read from upstream's environment variables and flags (bss-spec 6.1).

Quirks kept: ``DATASTORE_BASE`` has no effect (the ``--datastore`` default is computed from
``ETCD_HOST``/``ETCD_PORT`` or ``mem:``); ``*_RETRY_COUNT``/``*_RETRY_WAIT`` env vars are logged as
invalid and ignored; ``BSS_INSECURE`` selects ``sslmode=disable`` (else ``verify-full``);
``BSS_ADVERTISE_ADDRESS`` empty is fatal. ``BSS_IPXE_SERVER``/``BSS_CHAIN_PROTO``/``BSS_GW_URI`` are
env-only and an explicitly empty value is honoured. Double-only: ``HPCLAB_BSS_TOKEN`` (static bearer
token protecting ``/boot/v1/bootparameters``, standing in for upstream's JWT check).
"""

import argparse
import os
import sys

TRUE_WORDS = ("1", "on", "yes", "true", "t", "y")
FALSE_WORDS = ("0", "off", "no", "false", "f", "n")
BROKEN_ENV = ("ETCD_RETRY_COUNT", "ETCD_RETRY_WAIT", "BSS_SQL_RETRY_COUNT", "BSS_SQL_RETRY_WAIT",
              "BSS_AUTH_RETRY_COUNT", "BSS_AUTH_RETRY_WAIT")


class SettingsError(ValueError):
    """A fatal configuration problem (the upstream binary exits)."""


def _env_bool(env, name, default=False):
    value = env.get(name, "")
    if value == "":
        return default
    if value.lower() in TRUE_WORDS:
        return True
    if value.lower() in FALSE_WORDS:
        return False
    sys.stderr.write(f"Invalid value for {name}: {value!r} (ignored)\n")
    return default


def _env_uint(env, name, default):
    value = env.get(name, "")
    if value == "":
        return default
    try:
        return int(value, 10)
    except ValueError:
        sys.stderr.write(f"Invalid value for {name}: {value!r} (ignored)\n")
        return default


def _bool_flag(text):
    if text.lower() in TRUE_WORDS:
        return True
    if text.lower() in FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {text!r}")


class Settings:  # pylint: disable=too-many-instance-attributes,too-few-public-methods
    """Resolved configuration; attribute names follow the upstream variables."""

    def __init__(self, argv=None, env=None):
        env = os.environ if env is None else env
        for name in BROKEN_ENV:
            if env.get(name):
                sys.stderr.write(f"{name}: Invalid type for receiving ENV variable value *uint64\n")
        kv_host, kv_port = env.get("ETCD_HOST", ""), env.get("ETCD_PORT", "")
        datastore_default = f"http://{kv_host}:{kv_port}" if kv_host and kv_port else "mem:"
        parser = argparse.ArgumentParser(prog="boot-script-service", allow_abbrev=False)

        def opt(name, default, kind=str):
            if kind is bool:
                parser.add_argument(f"-{name}", f"--{name}", dest=name.replace("-", "_"), nargs="?", const=True,
                                    default=default, type=_bool_flag)
            else:
                parser.add_argument(f"-{name}", f"--{name}", dest=name.replace("-", "_"), default=default, type=kind)

        opt("http-listen", env.get("BSS_HTTP_LISTEN") or ":27778")
        opt("hsm", env.get("HSM_URL") or "http://localhost:27779")
        opt("nfd", env.get("NFD_URL") or "http://localhost:28600")
        opt("datastore", datastore_default)
        opt("postgres-host", env.get("BSS_DBHOST") or "localhost")
        opt("postgres-port", _env_uint(env, "BSS_DBPORT", 5432), int)
        opt("postgres-dbname", env.get("BSS_DBNAME") or "bssdb")
        opt("postgres-username", env.get("BSS_DBUSER") or "bssuser")
        opt("postgres-password", env.get("BSS_DBPASS") or "bssuser")
        opt("service-name", env.get("BSS_SERVICE_NAME") or "boot-script-service")
        opt("spire-url", env.get("SPIRE_TOKEN_URL") or "https://spire-tokens.spire:54440")
        opt("cloud-init-address", env.get("BSS_ADVERTISE_ADDRESS", ""))
        opt("jwks-url", env.get("BSS_JWKS_URL", ""))
        opt("oauth2-admin-base-url", env.get("BSS_OAUTH2_ADMIN_BASE_URL") or "http://127.0.0.1:3333")
        opt("oauth2-public-base-url", env.get("BSS_OAUTH2_PUBLIC_BASE_URL") or "http://127.0.0.1:3333")
        opt("bootscript-notify-url", env.get("BSS_BOOTSCRIPT_NOTIFY_URL", ""))
        opt("insecure", _env_bool(env, "BSS_INSECURE"), bool)
        opt("debug", _env_bool(env, "BSS_DEBUG"), bool)
        opt("postgres", _env_bool(env, "BSS_USESQL"), bool)
        opt("retry-delay", _env_uint(env, "BSS_RETRY_DELAY", 30), int)
        opt("hsm-retrieval-delay", _env_uint(env, "BSS_HSM_RETRIEVAL_DELAY", 10), int)
        opt("auth-retry-count", 10, int)
        opt("auth-retry-wait", 5, int)
        opt("postgres-retry-count", 10, int)
        opt("postgres-retry-wait", 10, int)  # upstream's flag default copies the count
        args = parser.parse_args(argv)
        self.http_listen = args.http_listen
        self.hsm_url = args.hsm
        self.datastore = args.datastore
        self.use_sql = bool(args.postgres)
        self.insecure = bool(args.insecure)
        self.debug = bool(args.debug)
        self.advertise_address = args.cloud_init_address
        self.retry_delay = args.retry_delay
        self.hsm_retrieval_delay = args.hsm_retrieval_delay
        self.db = {"host": args.postgres_host, "port": args.postgres_port, "dbname": args.postgres_dbname,
                   "user": args.postgres_username, "password": args.postgres_password,
                   "opts": env.get("BSS_DBOPTS", ""),
                   "retry_count": args.postgres_retry_count, "retry_wait": args.postgres_retry_wait}
        self.ipxe_server = env["BSS_IPXE_SERVER"] if "BSS_IPXE_SERVER" in env else "api-gw-service-nmn.local"
        self.chain_proto = env["BSS_CHAIN_PROTO"] if "BSS_CHAIN_PROTO" in env else "https"
        self.gw_uri = env["BSS_GW_URI"] if "BSS_GW_URI" in env else "/apis/bss"
        self.bearer_token = env.get("HPCLAB_BSS_TOKEN", "")
        self.smd_token = env.get("HPCLAB_SMD_TOKEN", "")  # double-only: static bearer token sent to SMD
        # double-only: how an upstream handler panic shows: "drop" (golden: no HTTP response) or "500" (empty body)
        self.panic_mode = env.get("HPCLAB_BSS_PANIC", "drop")
        if self.panic_mode not in ("drop", "500"):
            raise SettingsError(f"HPCLAB_BSS_PANIC must be 'drop' or '500', got {self.panic_mode!r}")
        self.jwks_url = args.jwks_url
        self.notify_url = args.bootscript_notify_url
        self.service_name = args.service_name
        if not self.advertise_address:
            raise SettingsError("BSS_ADVERTISE_ADDRESS (--cloud-init-address) is required")

    def listen_address(self):
        """(host, port) from ``BSS_HTTP_LISTEN`` (``:27778`` means all addresses)."""
        host, _colon, port = self.http_listen.rpartition(":")
        return host.strip("[]") or "0.0.0.0", int(port)

    def postgres_conninfo(self):
        db = self.db
        sslmode = "disable" if self.insecure else "verify-full"
        text = (f"user={db['user']} password={db['password']} host={db['host']} port={db['port']} "
                f"dbname={db['dbname']} sslmode={sslmode}")
        return text + (" " + db["opts"] if db["opts"] else "")
