"""Run a real OpenLDAP slapd from a temporary directory: the LDAP server for tests and the soak.

Debian's slapd 2.5 (``apt-get install slapd ldap-utils``) is enough; nothing of the system's
own instance is used (no cn=config, no /var/lib/ldap, no port 389). Each instance gets:

- a ``slapd.conf`` with the core, cosine, inetorgperson and nis schemas from
  /etc/ldap/schema, plus (``ad_schema=True``) provtui's small AD test schema
  (``ad.schema`` beside this package: sAMAccountName, userPrincipalName,
  userAccountControl, whenChanged, department, objectGUID, the auxiliary class
  ``provtuiADUser`` and an AD-style structural ``group``);
- one mdb database (a loadable module on Debian: ``moduleload back_mdb``) with ``dbnosync``
  and a 1 GiB ``maxsize``, so 100,000-entry loads fit;
- ``sizelimit size.soft=500 size.prtotal=unlimited``: like a production server, a plain
  search stops at 500 entries, while a paged search may read everything. The rootdn is
  exempt from limits, so tests of paging bind as the *reader* account;
- the suffix entry, ``cn=reader`` (read access to everything but passwords) and the OUs
  ``ou=people``, ``ou=groups`` and ``ou=disabled``.

slapd runs in the foreground (``-d 32768``: only messages logged at any level, i.e. errors),
its output goes to ``slapd.log`` in the directory, and a failed start raises SlapdError
with that log. As root it drops to the ``openldap`` user when it exists (the directory is
chowned to it). ``modifyTimestamp``/``entryUUID``/``entryCSN`` are maintained by slapd;
the AD attributes ``whenChanged``/``whenCreated`` are not (tests set them).

The parts: entries (LDIF and the entries tests load), process (SlapdProcess); ``__main__`` the command.
"""

from provtui.testing.slapd.entries import (
    AD_TEST_GROUP_FILTER,
    AD_TEST_USER_FILTER,
    UF_ACCOUNTDISABLE,
    UF_NORMAL_ACCOUNT,
    Attributes,
    Entry,
    ad_group_entry,
    ad_user_entry,
    generalized_time,
    generate_people,
    group_entry,
    ou_entry,
    person_entry,
    ssha,
    to_ldif,
)
from provtui.testing.slapd.process import (
    AD_SCHEMA_FILE,
    MODULE_DIR,
    SCHEMA_DIR,
    STANDARD_SCHEMAS,
    SlapdError,
    SlapdProcess,
    find_slapd,
    slapd_available,
)

__all__ = [
    "AD_SCHEMA_FILE",
    "AD_TEST_GROUP_FILTER",
    "AD_TEST_USER_FILTER",
    "MODULE_DIR",
    "SCHEMA_DIR",
    "STANDARD_SCHEMAS",
    "UF_ACCOUNTDISABLE",
    "UF_NORMAL_ACCOUNT",
    "Attributes",
    "Entry",
    "SlapdError",
    "SlapdProcess",
    "ad_group_entry",
    "ad_user_entry",
    "find_slapd",
    "generalized_time",
    "generate_people",
    "group_entry",
    "ou_entry",
    "person_entry",
    "slapd_available",
    "ssha",
    "to_ldif",
]
