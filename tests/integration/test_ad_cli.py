"""The CLI sets up a real AD both ways (issue #17, 5): TLS, the directory's CA, filters, groups DN and the id
attribute on `source add-ldap` / `source update` and `app create` / `app update`; embedded and through a server."""

from __future__ import annotations

import json
import uuid

import pytest

PASSWORD_ENV = "PROVTUI_TEST_AD_CLI_PW"


@pytest.fixture
def ad(samba_dc, ad_ou, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, samba_dc.admin_password)
    login = f"cli{uuid.uuid4().hex[:6]}"
    samba_dc.add_user(ad_ou, login, "Cli", "User", password="Pa55-word-Ok")
    groups = samba_dc.add_ou("groups", ad_ou)
    samba_dc.add_group(groups, f"team{uuid.uuid4().hex[:4]}")
    return samba_dc, ad_ou, groups, login


def test_source_add_ldap_and_update_take_tls_the_ca_filters_and_the_groups_dn(cli, ad):
    dc, base, groups, login = ad
    code, out, err = cli(
        "source", "add-ldap", "corp", "--uri", dc.ldaps_uri, "--bind-dn", dc.admin_dn, "--password-env", PASSWORD_ENV,
        "--base-dn", base, "--flavor", "ad", "--tls", "ldaps", "--ca-file", dc.ca_file, "--groups-dn", groups,
        "--user-filter", "(&(objectClass=user)(objectCategory=person))", "--group-filter", "(objectClass=group)",
        "--external-id-attribute", "objectGUID", "--json",
    )  # fmt: skip
    assert code == 0, err
    settings = json.loads(out)["settings"]
    assert settings["ca_certificates"].startswith("sha256:") and "BEGIN CERTIFICATE" not in out  # kept, shown by fingerprint
    assert settings["group_base"] == groups and settings["tls"] == "ldaps" and settings["external_id_attribute"] == "objectGUID"
    code, out, err = cli("import", "ldap", "corp", "--json")
    assert code == 0 and json.loads(out)["created"] == 1 and json.loads(out)["groups"]["created"] == 1, err

    code, out, err = cli("source", "update", "corp", "--uri", dc.ldap_uri, "--tls", "starttls", "--password-env", PASSWORD_ENV)
    assert code == 0 and "updated LDAP source corp" in out, err
    code, out, err = cli("import", "ldap", "corp", "--full", "--json")
    assert code == 0 and json.loads(out)["created"] == 0, err
    code, _, err = cli("source", "update", "corp", "--uri", "ldaps://127.0.0.9")  # a new server, no password named
    assert code == 2 and "--password-secret" in err and "never follows a source" in err
    code, _, err = cli("source", "add-ldap", "x", "--uri", dc.ldaps_uri, "--bind-dn", "a=b", "--password-env", "V", "--base-dn", base,
                       "--ca-file", "/etc/hostname")  # fmt: skip
    assert code == 2 and "--ca-file" in err and "PEM" in err


def test_app_create_and_update_take_the_same_options_and_refuse_passwords_in_clear(cli, ad):
    dc, base, groups, _ = ad
    common = ["--bind-dn", dc.admin_dn, "--password-env", PASSWORD_ENV, "--base-dn", base, "--flavor", "ad"]
    code, _, err = cli("app", "create", "AD", "--ldap-uri", "ldap://dc1.example.test", *common)
    assert code == 2 and "--tls" in err and "in clear" in err
    code, out, err = cli(
        "app", "create", "AD", "--ldap-uri", dc.ldaps_uri, *common, "--ca-file", dc.ca_file, "--groups-dn", groups, "--json"
    )
    assert code == 0, err
    assert json.loads(out)["ldap"]["groups_dn"] == groups
    code, out, err = cli("app", "update", "AD", "--user-filter", "(objectClass=user)", "--groups-dn", base, "--json")
    assert code == 0, err
    ldap = json.loads(cli("app", "show", "AD", "--json")[1])["ldap"]
    assert ldap["groups_dn"] == base and ldap["user_filter"] == "(objectClass=user)"
    assert ldap["ca_certificates"].startswith("sha256:")
    code, _, err = cli("app", "update", "AD", "--ldap-uri", "ldap://dc1.example.test", "--tls", "none", "--password-env", PASSWORD_ENV)
    assert code == 2 and "in clear" in err
