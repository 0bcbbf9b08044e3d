"""Weak-password checks shared by the settings (database and broker URLs) and `keys passwd`.

A password is weak when it is shorter than :data:`MIN_LENGTH` or, ignoring case, digits and
punctuation appended or prepended, is one of the passwords every guessing list starts with: the
most frequent entries of the public breach corpora, product defaults and keyboard walks. The list
is short on purpose: its job is to catch the passwords an attacker tries first, while the length
rule does the rest.
"""

from __future__ import annotations

import re

MIN_LENGTH = 12

#: Product defaults and the head of the well-known leaked-password lists (all lower case).
WELL_KNOWN = frozenset("""
123456 123456789 12345678 1234567890 12345 1234567 123123 111111 000000 654321 666666 121212
112233 123321 159753 987654321 1q2w3e4r 1q2w3e4r5t 1qaz2wsx qwerty qwertz qwerty123 qwertyuiop
asdfgh asdfghjkl zxcvbnm azerty password passwort passw0rd p@ssw0rd p@ssword password1 letmein
welcome welcome1 willkommen hallo hallo123 geheim geheim123 sommer winter fruehling herbst
admin administrator root toor guest gast user test test123 testtest demo changeme change-me
changeit default secret secret123 s3cr3t master login abc123 abcdef abcd1234 iloveyou monkey
dragon football fussball baseball sunshine princess shadow superman batman trustno1 starwars
whatever freedom michael jennifer hunter2 killer pokemon computer internet schalke bvb09
postgres postgresql rabbitmq casebridge mysql oracle database
""".split())

_DECORATION = re.compile(r"^[\d\W_]+|[\d\W_]+$")


def weakness(password: str) -> str | None:
    """Why ``password`` is weak (without repeating it), or None."""
    if len(password) < MIN_LENGTH:
        return f"shorter than {MIN_LENGTH} characters"
    lowered = password.lower()
    core = _DECORATION.sub("", lowered)
    if lowered in WELL_KNOWN or core in WELL_KNOWN:
        return "a well-known password"
    if len(core) < 4:
        return "mostly digits and punctuation"
    if len(set(lowered)) <= 3:
        return "too few distinct characters"
    return None
