"""When a directory account expires (issue #17, 4): AD's accountExpires, OpenLDAP's shadowExpire."""

from datetime import UTC, datetime

import pytest

from provtui.connectors.ldap.entries import account_expiry


@pytest.mark.parametrize("value", ["0", "9223372036854775807", "-1", "not a number", None])
def test_ad_never_expires(value):
    assert account_expiry({"accountExpires": [value]} if value is not None else {}, "ad") is None


def test_ad_ticks_since_1601():
    # 2024-01-31 00:00:00 UTC as Windows FILETIME (100 ns ticks since 1601-01-01)
    ticks = int((datetime(2024, 1, 31, tzinfo=UTC) - datetime(1601, 1, 1, tzinfo=UTC)).total_seconds()) * 10_000_000
    assert account_expiry({"accountExpires": [str(ticks)]}, "ad") == datetime(2024, 1, 31, tzinfo=UTC)
    assert account_expiry({"accountExpires": [ticks]}, "ad") == datetime(2024, 1, 31, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"), [("-1", None), ("0", datetime(1970, 1, 1, tzinfo=UTC)), ("19752", datetime(2024, 1, 30, tzinfo=UTC))]
)
def test_openldap_shadow_expire_in_days(value, expected):
    assert account_expiry({"shadowExpire": [value]}, "openldap") == expected


def test_each_flavor_reads_its_own_attribute():
    assert account_expiry({"shadowExpire": ["1"]}, "ad") is None
    assert account_expiry({"accountExpires": ["1"]}, "openldap") is None
