"""SCIM client names and tokens (provtui.domain.scim_clients): pure, no I/O."""

import pytest

from provtui.domain.errors import InvalidInput
from provtui.domain.scim_clients import client_of, new_token, source_of, token_digest, validate_client_name


def test_tokens_are_random_and_known_only_by_their_digest():
    tokens = {new_token() for _ in range(50)}
    assert len(tokens) == 50 and all(t.startswith("pvscim_") and len(t) >= 7 + 43 for t in tokens)
    token = next(iter(tokens))
    digests = [("okta", token_digest(new_token())), ("entra", token_digest(token)), ("hr", token_digest(new_token()))]
    assert client_of(token, digests) == "entra"
    assert client_of(token[:-1], digests) is None and client_of("", digests) is None and client_of(token, []) is None
    assert token not in token_digest(token) and len(token_digest(token)) == 64


@pytest.mark.parametrize("name", ["okta", "Entra-ID", "hr.workday_1"])
def test_a_client_name_names_its_source(name):
    assert validate_client_name(name) == name and source_of(name) == f"scim:{name}"


@pytest.mark.parametrize("name", ["", "-okta", "has space", "a:b", "x" * 65, None])
def test_a_bad_client_name_is_refused_naming_the_field(name):
    with pytest.raises(InvalidInput) as raised:
        validate_client_name(name)
    assert raised.value.field == "NAME"
