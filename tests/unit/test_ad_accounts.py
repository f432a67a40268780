"""AD's account rules provtui applies itself (issue #17, 10): sAMAccountName within 20 characters and stable."""

from provtui.connectors.ldap.ad_accounts import derive_sam, domain_root, has_password, sam_candidates


def test_a_login_that_fits_is_its_own_name():
    assert sam_candidates("ada") == ["ada"]
    assert derive_sam("ada", lambda name: None) == ("ada", None)


def test_a_long_or_email_login_is_cut_and_a_taken_cut_gets_a_stable_suffix():
    long = "alexandria.ocasio-cortez"
    first, second = sam_candidates(long)
    assert first == "alexandria.ocasio-co" and len(first) == 20
    assert len(second) == 20 and second.startswith("alexandria.ocas-") and sam_candidates(long)[1] == second
    assert sam_candidates("ada.lovelace@example.com")[0] == "ada.lovelace"
    taken = {first: "CN=someone,DC=x"}
    assert derive_sam(long, taken.get) == (second, None)


def test_every_candidate_taken_names_the_holder():
    assert derive_sam("bob", {"bob": "CN=Bob,OU=Other,DC=x"}.get) == ("bob", "CN=Bob,OU=Other,DC=x")


def test_characters_ad_refuses_are_replaced():
    assert sam_candidates("a[b]c")[0] == "a_b_c"


def test_password_and_domain_root():
    assert not has_password({}) and not has_password({"pwdLastSet": [b"0"]}) and has_password({"pwdLastSet": [b"133"]})
    assert domain_root("CN=Ada,OU=People,DC=example,DC=test") == "DC=example,DC=test"
