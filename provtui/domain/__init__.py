"""The rules of identity, as pure functions: no I/O, no textual, tinydb, httpx or ldap3."""
