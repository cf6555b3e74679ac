"""Boot-script text exactly as upstream BSS builds it (bss-spec 5.2 - 5.4)."""

import re

PANIC = object()  # marker: upstream panics while building these parameters


class ScriptPanic(RuntimeError):
    """Upstream BSS panics here (the connection is dropped without a response)."""


def go_parse_int(text, default):
    """``strconv.ParseInt(s, 0, 64)``: base prefixes 0x/0o/0b, a leading 0 means octal; else ``default``."""
    if text is None or text == "":
        return default
    sign, body = 1, text
    if body[0] in "+-":
        sign, body = (-1 if body[0] == "-" else 1), body[1:]
    base = 10
    lower = body.lower()
    if lower.startswith("0x"):
        base, body = 16, body[2:]
    elif lower.startswith("0o"):
        base, body = 8, body[2:]
    elif lower.startswith("0b"):
        base, body = 2, body[2:]
    elif lower.startswith("0") and len(body) > 1:
        base, body = 8, body[1:]
    if base != 10:
        body = body.replace("_", "") if not body.startswith("_") else body
    if not body or not re.fullmatch(r"[0-9a-fA-F]+", body):
        return default
    try:
        value = sign * int(body, base)
    except ValueError:
        return default
    if not -2**63 <= value < 2**63:
        return default
    return value


def _has_key(params, key):
    return any(piece.startswith(key) for piece in params.split(" "))


def build_params(data, xname="", nid="", token="", mac="", advertise=""):
    """Compose the kernel command line of bss-spec 5.2 (untrimmed); raises ScriptPanic on the initrd quirk."""
    text = data.params
    if data.kernel_params:
        text += " " + data.kernel_params
    if data.initrd_params:
        text += " " + data.initrd_params
    for key, value in (("xname=", xname), ("nid=", nid), ("bss_referral_token=", token),
                       ("BOOTIF=", "01-" + mac.replace(":", "-") if mac else ""),
                       ("ds=", f"nocloud-net;s={advertise}/")):
        if value and not _has_key(text, key):
            text += " " + key + value
    if data.initrd:
        start = text.find("initrd")
        if start >= 0:
            end = text.find(" ", start)
            if end < 0:
                raise ScriptPanic("slice bounds out of range removing initrd parameter")
            text = text[:start] + text[end:]
        text = "initrd=initrd " + text
    return text


def boot_script(data, params, chain, retry_delay):
    """The iPXE script (without the HTTP body's extra trailing newline)."""
    lines = ["#!ipxe", f"kernel --name kernel {data.kernel} {params.strip(' ')} || goto boot_retry"]
    if data.initrd:
        lines.append(f"initrd --name initrd {data.initrd} || goto boot_retry")
    lines += ["boot || goto boot_retry", ":boot_retry", f"sleep {retry_delay}", chain]
    return "\n".join(lines) + "\n"


def sleep_script(delay, chain):
    return f"#!ipxe\nsleep {delay}\n{chain}\n"


def chain_base(settings):
    return f"{settings.chain_proto}://{settings.ipxe_server}{settings.gw_uri}"


def known_chain(settings, path, mac, xname, retry):
    query = f"?mac={mac}" if mac else f"?name={xname}"
    return f"chain {chain_base(settings)}{path}{query}&retry={retry + 1}"


def discovery_chain(settings, mac, name, nid, ts):
    if mac:
        query = f"?mac={mac}"
    elif name:
        query = f"?name={name}"
    elif nid is not None and nid >= 0:
        query = f"?nid={nid}"
    else:
        query = "?mac=${net/net0}"
    return f"chain {chain_base(settings)}/boot/v1/bootscript{query}&arch=${{buildarch}}&ts={ts}"
