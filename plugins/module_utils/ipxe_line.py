# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What iPXE makes of a boot-script line, and which values would change the script BSS serves (pure).

iPXE splits a script line into tokens at ASCII whitespace, with no quoting and no escaping. A token that
is exactly ``||``, ``&&`` or ``;`` ends one command and starts another; a token that begins with ``#``
starts a comment running to the end of the line. Settings such as ``${SPIRE_JOIN_TOKEN}`` are expanded
inside each token only after this split, so an expansion never makes an operator or a comment. A
command's options end at its first argument that does not begin with ``-``.

BSS writes ``kernel --name kernel <kernel> <params> || goto boot_retry`` and
``initrd --name initrd <initrd> || goto boot_retry``; when a node has an initrd, BSS also cuts the
first ``initrd`` it finds in the parameters up to the next space (bss-spec 5.2, 5.4).
"""

from __future__ import annotations

import re

OPERATORS = ("||", "&&", ";")
SPACE_RE = re.compile(r"[ \t\n\v\f\r]+")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
RETRY_TARGET = ["goto", "boot_retry"]


def tokens(line):
    """The whitespace-separated tokens of one line, as iPXE splits it."""
    return [token for token in SPACE_RE.split(line or "") if token]


def commands(line):
    """``[(argv, operator)]`` for one line: the commands iPXE runs, each with the operator after it.

    The operator is ``||``, ``&&``, ``;`` or None (end of line); a comment drops the rest of the line.
    """
    result = []
    argv = []
    for token in tokens(line):
        if token.startswith("#"):
            break
        if token in OPERATORS:
            result.append((argv, token))
            argv = []
            continue
        argv.append(token)
    if argv or not result:
        result.append((argv, None))
    return result


def token_problem(token):
    """Why one token of a command line would change the command structure, or None."""
    if token in OPERATORS:
        return "has the token '%s', an iPXE operator that would start another command on the kernel line" % token
    if token.startswith("#"):
        return ("has the token '%s': iPXE reads '#' at the start of a word as a comment and would drop the rest of "
                "the line, including '|| goto boot_retry'" % token[:40])
    return None


def params_problem(value):
    """Why these kernel parameters would change the structure of the boot script, or None."""
    if CONTROL_RE.search(value or ""):
        return "contains a newline or control character, which would inject iPXE commands"
    for token in tokens(value):
        problem = token_problem(token)
        if problem:
            return problem
        cut = token.find("initrd")
        if cut > 0 and token[:cut] in OPERATORS:
            return ("has the token '%s', which becomes the iPXE operator '%s' when BSS removes its 'initrd' part"
                    % (token[:40], token[:cut]))
    return None


def image_problem(value):
    """Why a kernel or initrd reference would change the structure of its script line, or None."""
    if CONTROL_RE.search(value or "") or " " in (value or ""):
        return "contains whitespace or control characters"
    if (value or "").startswith("-"):
        return "starts with '-': iPXE would read it as an option of the kernel/initrd command, not as the image"
    return token_problem(value) if value else None
