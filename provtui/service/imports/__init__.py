"""Imports through the service: sources of truth, dry runs, the safeguard, one transaction.

The parsing and planning are pure (provtui.domain.hr_import, .import_plan); this module is
the part of the service that reads the store to plan, holds a mass
deprovisioning for confirmation, and applies a plan as one change, audited
and followed by the provisioning it implies.

Three kinds of import:

CSV (``import_csv``)
    An HR export; a full import deactivates this source's users missing from the file.
    ``strict``: apply nothing when any row is rejected (else the valid rows are applied and
    the rejected ones reported).  The result names the columns not imported (``ignored_columns``).

LDAP / Active Directory (``import_ldap``)
    Users are read with a paged search (provtui.connectors.ldap) and become the same
    ``Row``s a CSV gives, planned by the same ``plan_import``: an enabled entry is an
    active person, a disabled one (AD's ACCOUNTDISABLE bit, or an entry under one of the
    source's ``disabled_bases``) a deprovisioned one; the key is the login. Each rejected
    entry is reported with its position in the read (``line``) and its ``dn``.

    Full or incremental. A run is *full* the first time, when ``full=True`` (``--full``),
    and when the last full run is older than ``full_every_hours`` (24 by default);
    otherwise it is *incremental*: only entries changed since the mark the last applied
    run saved (modifyTimestamp / whenChanged, see the connector for why the mark is
    safe). An incremental run never deactivates anyone for being absent (it cannot see
    deletions): only a full run deactivates this source's users missing from the
    directory. The mark is saved with the users, in the same transaction, so a dry run,
    a held run or a failed one leaves it where it was. (An entry an incremental run
    rejects is read again when it changes, or by the next full run.)

    Groups (groupOfNames, AD's group; their ``member``) are read in full on every run.
    Each becomes a provtui group of kind ``source:<NAME>`` whose membership *by this
    source* (membership docs with ``via: "source:<NAME>"``) is set to exactly the
    directory's, nested groups flattened. Members are the users this source masters,
    or whose entry this run accepted (a login that merely collides with someone else's
    user is not made a member). A name taken by another group gets `` (<NAME>)``
    appended. A group gone from the directory keeps its provtui group (assignments to it
    stay visible) but loses every membership this source gave. Membership changes queue
    the (app, user) accounts they affect and the group's pushed copies, in the same
    transaction as the users. To resolve member DNs in incremental runs (the members
    did not change, so they are not read) each source keeps a DN -> login index
    (table ``source_entries``), rebuilt by every full run.

    Live sources (``--live``, ``apply_live``; service/imports/ldap_live.py): the worker keeps a session to the
    directory and each change it reports is applied through this same planning as it arrives.

    Scheduled imports: a source's ``interval`` (minutes); ``due_sources(now)`` names the
    sources due, ``run_due_imports()`` runs them (a held, refused or failed run is recorded on
    the source as its ``last_attempt`` and counts as a run for the schedule; no scheduled run
    is ever allowed to be empty).

Refusals, holds and dry runs (CSV and LDAP alike, ``_gate``)
    A full run that yields no valid person (``plan_import``'s ``plan.refused``: no row, every
    row rejected, an LDAP search under the wrong base DN or filter) is refused: ImportRefused,
    exit 2, with or without ``confirm``; nothing is written but the refusal's audit event
    (``import.refused``; an LDAP source also records it as its ``last_attempt``).  Only
    ``allow_empty`` lets such a run through, and the safeguard still holds it for ``confirm``.
    A source that cannot be read (server down, bind refused) raises SourceFailed and changes
    nothing either (``import.failed``).  A dry run goes through the same gate (refusal, strict,
    safeguard: it raises what the real run would raise) and writes nothing at all.

App import (``import_app``)
    An app's existing accounts (SCIM GET /Users, paged) are matched to users by one rule
    (userName -> login, email -> the profile's email, externalId -> the user's id) and
    linked: the account doc gets the remote id, its active flag and its attributes as the
    app holds them, so the next reconcile sends only what differs (an account of a user
    who is not entitled to the app, or deprovisioned, is deactivated by it). Accounts
    already linked are left alone; an account matching a user who has another linked
    account, or matching several users, or a user several accounts match, is a conflict
    and is not linked; accounts matching nobody are orphans (``report orphans``).
    Linking needs ``confirm`` (else HeldForConfirmation, exit 3) unless nothing would be
    linked; orphans are recorded whenever the run is applied.
"""

from provtui.domain.errors import ImportRefused, SourceFailed
from provtui.service.imports.app import AppImports
from provtui.service.imports.common import validate_source_name
from provtui.service.imports.csv import CsvImports
from provtui.service.imports.ldap import ldap_rows
from provtui.service.imports.ldap_live import LiveImports
from provtui.service.imports.ldap_sources import ldap_settings


class Importer(CsvImports, LiveImports, AppImports):
    """Imports through the service (see the package docstring): each kind of source is one base."""


__all__ = ["Importer", "ImportRefused", "SourceFailed", "ldap_rows", "ldap_settings", "validate_source_name"]
