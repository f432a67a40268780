"""Run a real Samba 4 Active Directory domain controller from a temporary directory: the AD server for tests.

Debian's Samba 4.17 (``apt-get install --no-install-recommends samba samba-ad-provision samba-dsdb-modules
samba-vfs-modules``) is enough; nothing of the system's own Samba is used (no /etc/samba/smb.conf, /var/lib/samba
or /run/samba). Each DC is the domain EXAMPLE.TEST (NetBIOS EXAMPLE, base ``DC=example,DC=test``, host dc1):

- provisioned with ``samba-tool domain provision --dns-backend=NONE --use-rfc2307`` and ``ldb:nosync``. That
  takes 10-15 s, so it is done once per machine into a template under ``~/.cache/provtui/samba`` (keyed by
  Samba's version; ``PROVTUI_SAMBA_CACHE`` moves it, ``=off`` provisions every DC) and each DC starts from a copy;
- running only Samba's LDAP service (``server services = ldap``), ``samba -i -M single``: one process, its log
  in the directory, a failed start raising SambaError with that log;
- on an address of its own, 127.0.0.N: Samba's ports (389, 636, 3268, 3269) cannot be moved, so two DCs cannot
  share an address; Linux answers on all of 127.0.0.0/8 with no set-up;
- with LDAPS and STARTTLS under a throwaway CA of its own (``ca_file``) whose certificate names that address,
  and simple binds allowed over plain LDAP as well (``ldap server require strong auth = no``).

The parts: tls (the CA), provision (samba-tool, the template cache, smb.conf), process (SambaDC);
``__main__`` the command.
"""

from provtui.testing.samba.process import (
    DOMAIN_USERS_RID,
    LDAP_PORTS,
    UF_ACCOUNTDISABLE,
    UF_NORMAL_ACCOUNT,
    SambaDC,
    encode_password,
    free_loopback_ip,
    guid_string,
    ldap_ports_free,
)
from provtui.testing.samba.provision import (
    ADMIN_DN,
    BASE_DN,
    CACHE_ENV,
    DOMAIN,
    INSTALL_HINT,
    REALM,
    SambaError,
    cache_root,
    ensure_template,
    samba_available,
)
from provtui.testing.samba.tls import TlsError, TlsFiles, make_server_certificate

__all__ = [
    "ADMIN_DN",
    "BASE_DN",
    "CACHE_ENV",
    "DOMAIN",
    "DOMAIN_USERS_RID",
    "INSTALL_HINT",
    "LDAP_PORTS",
    "REALM",
    "UF_ACCOUNTDISABLE",
    "UF_NORMAL_ACCOUNT",
    "SambaDC",
    "SambaError",
    "TlsError",
    "TlsFiles",
    "cache_root",
    "encode_password",
    "ensure_template",
    "free_loopback_ip",
    "guid_string",
    "ldap_ports_free",
    "make_server_certificate",
    "samba_available",
]
