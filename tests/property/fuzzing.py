"""Shared settings and input strategies of the bounded fuzz tests (hypothesis, pytest only).

Every fuzz test is derandomised (the same inputs on every run, so CI is stable) and bounded by a number
of examples that runs in a few seconds. ``HPC_BOOT_FUZZ_EXAMPLES=20000 pytest tests/property`` fuzzes
longer on a workstation; a crasher found that way is kept as an ``@example`` next to its test.
"""

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("HPC_BOOT_FUZZ_EXAMPLES", "250"))


def fuzz_settings(examples=EXAMPLES):
    return settings(max_examples=examples, derandomize=True, deadline=None, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])


# Scalars as json.loads returns them (Python's json accepts NaN and Infinity), with text that looks like what
# SMD and BSS send: xnames, MACs in several spellings, numbers as text.
LOOKALIKE = st.sampled_from(["x3000c0s1b0n0", "x1000c0s0b0n0", "a4:bf:01:3e:1f:a0", "A4-BF-01-3E-1F-A0", "a4bf013e1fa0",
                             "ff:ff:ff:ff:ff:ff", "Not Available", "Default", "Global", "nid1", "Node", "Compute",
                             "1", "0x1", "-1", "", " ", "\u00a0", "\ud800", "\x00", "Ready", "Unknown-x86_64"])
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70), st.floats(),
                    st.text(max_size=12), LOOKALIKE)


def json_values(max_leaves=12):
    return st.recursive(scalars, lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.one_of(st.text(max_size=6), LOOKALIKE), children, max_size=4)),
        max_leaves=max_leaves)


def objects(fields, values=None):
    """Mappings that mostly carry the named fields (each with any JSON value, or a likely one) and sometimes others."""
    values = json_values(6) if values is None else values
    known = st.dictionaries(st.sampled_from(fields), st.one_of(values, LOOKALIKE), max_size=len(fields))
    return st.one_of(known, known, st.builds(lambda a, b: dict(b, **a), known, st.dictionaries(st.text(max_size=5), values, max_size=2)),
                     json_values(6))
