"""The LDAP connectors' own errors (the target connector turns them into the contract's, see target.to_downstream)."""

from __future__ import annotations


class LdapError(Exception):
    """A failed directory operation; ``retryable`` tells the caller whether to try again later.

    The message names the server and bind DN where useful, never the password.
    """

    def __init__(self, message: str, *, retryable: bool = False, result_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.result_code = result_code

    def __repr__(self) -> str:
        return f"{type(self).__name__}(message={self.message!r}, retryable={self.retryable!r}, result_code={self.result_code!r})"


class LdapConflict(LdapError):
    """entryAlreadyExists (68): the DN is taken; look the entry up and link instead of creating."""

    dn: str | None = None  # the DN that was taken, when an add knows it
