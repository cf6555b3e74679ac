"""Property: a declared (kernel, initrd, params) is refused naming its field, or the boot script BSS serves keeps
its structure as iPXE reads it (issue 14).

The script is rendered by the lab's BSS double (``hpclab.bss.script``, byte-exact to bss-spec 5.2-5.4) and read
back with the collection's parser: exactly one kernel line, at most one initrd line (one when declared), one boot
line, each followed by ``|| goto boot_retry``, then ``:boot_retry``, ``sleep`` and ``chain``; and the kernel,
initrd and params it carries are the declared ones. Derandomised, so every run tries the same inputs.
"""

import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ansible_collections.hpc_boot.bss.plugins.module_utils import bootparams_model as model
from ansible_collections.hpc_boot.bss.plugins.module_utils import bootscript_parse
from hpclab.bss.model import BootData
from hpclab.bss.script import boot_script, build_params

MAC = "aa:bb:cc:00:11:22"
XNAME = "x1000c0s0b0n0"
TOKEN = "6f1c2e5a-0b7d-4c8e-9a3f-2d4b6c8e0f12"
ADVERTISE = "http://10.1.0.2:27778"
CHAIN = "chain https://api-gw-service-nmn.local/apis/bss/boot/v1/bootscript?mac=%s&retry=1" % MAC
SAFE = {"kernel": "http://10.1.0.1/boot/vmlinuz", "initrd": "", "params": "console=ttyS0"}
APPENDED_KEYS = ("xname=", "nid=", "bss_referral_token=", "BOOTIF=", "ds=")
FIELD_RE = re.compile(r"^declarations\[0\]\.(kernel|initrd|params): ")

HOSTILE = ["||", "&&", ";", "#", "#x", "|", "&", "||x", "x||", "&&x", ";x", "x;", "${SPIRE_JOIN_TOKEN}", "${a}||",
           "|${a}|", "${a}#", "${", "}", "\\", "\\n", "\"", "'", "`", "$(id)", ":boot_retry", "goto", "boot_retry",
           "--name", "-n", "initrd", "initrd=x", "||initrd", "&&initrd=1", ";initrd", "#initrd", "x#y",
           "\n", "\r", "\t", "\x00", "\x0b", "\u00a0", "\u2028", "\x85", "kernel", "chain", "imgexec"]
NORMAL = ["console=ttyS0,115200", "ip=dhcp", "quiet", "root=live:http://10.1.0.1/squash", "rd.neednet=1",
          "ds=nocloud-net;s=http://10.0.0.1/", "spire_join_token=${SPIRE_JOIN_TOKEN}", "a=b;c", "x#1"]
ALPHABET = "ab=,./:;#|&${}\\-_ \t\n\"'`()!*?~%@+0123456789initrd"

tokens = st.one_of(st.sampled_from(NORMAL), st.sampled_from(NORMAL), st.sampled_from(HOSTILE),
                   st.text(alphabet=ALPHABET, max_size=10),
                   # words that BSS cuts at 'initrd' when the node has an initrd (bss-spec 5.2)
                   st.builds(lambda head, tail: head + "initrd" + tail, st.sampled_from(["||", "&&", ";", "#", "|", "a", ""]),
                             st.text(alphabet="=x1|&", max_size=3)))
separators = st.sampled_from([" "] * 8 + ["  ", " \t", "\n", "\r\n", "\x0c"])


@st.composite
def params_values(draw):
    words = draw(st.lists(tokens, max_size=6))
    text = ""
    for word in words:
        text += draw(separators) + word if text else word
    return draw(st.sampled_from(["", " "])) + text + draw(st.sampled_from(["", " ", "  "]))


GOOD_IMAGES = ["http://10.1.0.1/boot/vmlinuz", "https://h.example/k?x=1#frag", "s3://bucket/k", "/boot/vmlinuz", "k",
               "http://${next-server}/k", "http://h/a||b"]
images = st.one_of(
    st.sampled_from(GOOD_IMAGES), st.sampled_from(GOOD_IMAGES),
    st.sampled_from(["http://10.1.0.1/boot/vmlinuz", "https://h.example/k?x=1#frag", "s3://bucket/k",
                     "/boot/vmlinuz", "k", "http://${next-server}/k", "http://h/${a}||", "http://h/a||b",
                     "-k", "--autofree", "#k", "||", "&&", ";", "http://h/a b", "http://h/k\n#!ipxe", "data:x",
                     "file:///etc/passwd", "\\\\server\\share", "http://h/k;x", "${kernel}", "k#", "%2d"]),
    st.text(alphabet=ALPHABET, max_size=20),
    st.builds(lambda tail: "http://10.1.0.1/" + tail, st.text(alphabet=ALPHABET, max_size=12)),
)
optional_images = st.one_of(st.just(""), images)


def expected_params(declared, initrd):
    """The declared params as BSS carries them: with an initrd it cuts the first 'initrd' up to the next space."""
    words = [word for word in declared.split(" ") if word]
    if initrd:
        for index, word in enumerate(words):
            cut = word.find("initrd")
            if cut >= 0:
                words[index:index + 1] = [word[:cut]] if cut else []
                break
        words = ["initrd=initrd"] + words
    return words


def render(config):
    data = BootData(config.params, config.kernel, config.initrd, token=TOKEN)
    params = build_params(data, XNAME, "1", TOKEN, MAC.upper(), ADVERTISE)
    return boot_script(data, params, CHAIN, 30) + "\n"


def check(kernel, initrd, params):
    raw = {"kernel": kernel, "initrd": initrd, "params": params, "macs": [MAC]}
    try:
        declaration = model.parse_declaration(raw)
    except model.BootParamsError as exc:
        named = FIELD_RE.match(str(exc))
        assert named, "refusal names no declared field: %s" % exc
        field = named.group(1)
        # the named field alone, with safe values elsewhere, is refused for the same field
        with pytest.raises(model.BootParamsError, match=r"^declarations\[0\]\.%s: " % field):
            model.parse_declaration(dict(SAFE, macs=[MAC], **{field: raw[field]}))
        return "refused"
    config = declaration.config
    script = render(config)
    assert bootscript_parse.structure_problems(script) == [], script
    parsed = bootscript_parse.parse_script(script)
    assert (parsed["kind"], parsed["kernel"], parsed["initrd"]) == ("boot", kernel, initrd or "")
    carried = [word for word in parsed["params"].split(" ") if word]
    declared = expected_params(config.params, config.initrd)
    assert carried[:len(declared)] == declared
    assert all(word.startswith(APPENDED_KEYS) for word in carried[len(declared):])
    assert parsed["retry_delay"] == "30" and parsed["chain"] == CHAIN[len("chain "):]
    return "accepted"


@settings(max_examples=600, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(kernel=images, initrd=optional_images, params=params_values())
@example(kernel=SAFE["kernel"], initrd="", params="a || goto x")                   # the report in issue 14
@example(kernel=SAFE["kernel"], initrd="http://10.1.0.1/i", params="||initrd=3 b")  # operator after BSS's initrd cut
@example(kernel=SAFE["kernel"], initrd="", params="quiet #rest")                    # comment drops the retry
@example(kernel="--autofree", initrd="", params="quiet")                             # option instead of the image
@example(kernel=SAFE["kernel"], initrd="", params="a=${SPIRE_JOIN_TOKEN} ds=nocloud-net;s=http://h/ x#1 a;b")
def test_declaration_is_refused_or_keeps_the_script_structure(kernel, initrd, params):
    check(kernel, initrd, params)


def test_the_generated_inputs_exercise_both_outcomes():
    """The strategy above is not vacuous: it yields accepted and refused declarations alike."""
    outcomes = {"accepted": 0, "refused": 0}

    @settings(max_examples=300, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(kernel=images, initrd=optional_images, params=params_values())
    def count(kernel, initrd, params):
        outcomes[check(kernel, initrd, params)] += 1

    count()
    assert outcomes["accepted"] >= 30 and outcomes["refused"] >= 30, outcomes


@pytest.mark.parametrize("params", ["${SPIRE_JOIN_TOKEN}", "spire=${SPIRE_JOIN_TOKEN} quiet", "ds=nocloud-net;s=http://h/",
                                    "a;b", "x#1", "a||b", "a&&b", "${a}||", "|${a}|"])
def test_legitimate_values_stay_allowed(params):
    """Settings, ';' and '#' inside a word, and operators glued to other text are one argument for iPXE."""
    assert check(SAFE["kernel"], "http://10.1.0.1/i", params) == "accepted"
