"""BootParams decoding and validation of the BSS double (Go encoding/json rules, bss-spec 1.1, 4.4)."""

import pytest

from hpclab.bss.gotext import go_json
from hpclab.bss.model import BadRequest, boot_params_json, check_macs, check_xnames, decode_boot_params

EMPTY_CI = ('"cloud-init":{"meta-data":null,"user-data":null,"phone-home":{"pub_key_dsa":"","pub_key_rsa":"",'
            '"pub_key_ecdsa":"","instance_id":"","hostname":"","fqdn":""}}')


def test_field_names_match_case_insensitively_and_trailing_data_is_ignored():
    bp = decode_boot_params(b'{"Hosts":["x1c0s0b0n0"],"KERNEL":"k","Params":"p","nids":[3]} trailing')
    assert (bp["hosts"], bp["kernel"], bp["params"], bp["nids"]) == (["x1c0s0b0n0"], "k", "p", [3])


@pytest.mark.parametrize("body, message", [
    (b"", "EOF"),
    (b"   ", "EOF"),
    (b'{"hosts":', "unexpected EOF"),
    (b"nope", "invalid character 'n' looking for beginning of value"),
    (b'{"nids":["4"]}', "json: cannot unmarshal string into Go struct field BootParams.nids of type int32"),
    (b'{"nids":[1.5]}', "json: cannot unmarshal number 1.5 into Go struct field BootParams.nids of type int32"),
    (b'{"hosts":"x1"}', "json: cannot unmarshal string into Go struct field BootParams.hosts of type []string"),
    (b'{"kernel":5}', "json: cannot unmarshal number into Go struct field BootParams.kernel of type string"),
])
def test_undecodable_bodies_name_the_problem(body, message):
    with pytest.raises(BadRequest) as info:
        decode_boot_params(body)
    assert str(info.value) == message


def test_mac_and_xname_validation_texts():
    with pytest.raises(BadRequest) as info:
        check_macs(decode_boot_params(b'{"macs":["aa:bb:cc:dd:ee:ff","AA-BB-CC-DD-EE-FF"]}'))
    assert str(info.value) == "invalid MAC address format: AA-BB-CC-DD-EE-FF\n"
    for host, message in (("Default", "invalid xname: Default"), ("x1000c0s0b0", "invalid xname type: NodeBMC"),
                          ("X1000c0s0b0n0", "invalid xname: X1000c0s0b0n0")):
        with pytest.raises(BadRequest) as info:
            check_xnames(decode_boot_params(('{"hosts":["%s"]}' % host).encode()))
        assert str(info.value) == message
    check_xnames(decode_boot_params(b'{"hosts":["x1000c7s99b0n1"]}'))


def test_boot_params_encoding_order_and_cloud_init_shape():
    assert go_json(boot_params_json(hosts=["x1"], params="a&b", kernel="k")) == \
        '{"hosts":["x1"],"params":"a\\u0026b","kernel":"k",' + EMPTY_CI + '}'
    bp = decode_boot_params(b'{"cloud-init":{"meta-data":{"b":1,"a":{"d":1,"c":2}},"phone-home":{"pub_key_ed25519":"e"}}}')
    assert go_json(bp["cloud-init"]) == ('{"meta-data":{"a":{"c":2,"d":1},"b":1},"user-data":null,"phone-home":'
                                         '{"pub_key_dsa":"","pub_key_rsa":"","pub_key_ecdsa":"","pub_key_ed25519":"e",'
                                         '"instance_id":"","hostname":"","fqdn":""}}')
