"""Accounts as people count them: which are active, and which deprovisions are not done yet.

One definition of each, so that the dashboard, the Tasks screen, the reports and `app status` never
disagree (issue #18): they all read them through the service (``Reads.status_of``, ``Reports.apps``
and ``Reports.pending``), which apply these to the store's records.

* An **active account** holds a seat downstream: the app has it active as last known, whatever work is
  queued on it.  A deactivation queued, failed, or waiting on a manual deprovision task leaves the
  person able to sign in (and using a license), so the account is still active; a provision task not
  done yet gives no seat, so it is not.
* A **pending deprovision** is a deprovision not done yet: an open manual *deprovision* task, or an
  active account whose user is no longer entitled that no open task covers (its deactivation is
  queued, failed, or not noticed yet).  An open *provision* task is never a pending deprovision.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

OPEN = "open"  # a task's state until an admin marks it done or the engine cancels it
PROVISION = "provision"
DEPROVISION = "deprovision"

Record = Mapping[str, Any]


def is_active_account(account: Record) -> bool:
    """The account holds a seat downstream (see the module's note)."""
    return bool(account.get("active"))


def active_accounts(accounts: Iterable[Record]) -> int:
    """How many of ``accounts`` are active."""
    return sum(1 for account in accounts if is_active_account(account))


def is_open_task(task: Record, action: str) -> bool:
    """The task is open and asks for ``action`` (PROVISION or DEPROVISION)."""
    return task.get("state") == OPEN and task.get("action") == action


def pending_deprovisions(
    tasks: Iterable[Record], accounts: Iterable[Record], entitled: Callable[[Record], bool]
) -> tuple[list[Record], list[Record]]:
    """The deprovisions not done yet among ``tasks`` and ``accounts`` (records with ``app`` and ``user``):
    (the open deprovision tasks, the accounts awaiting deactivation), each in the order given.

    ``entitled(account)``: whether the account's user should still have it; asked only of active accounts
    no open task covers (an open task of either kind already says what happens to its account)."""
    tasks = list(tasks)
    covered = {(task["app"], task["user"]) for task in tasks if task.get("state") == OPEN}
    deprovision_tasks = [task for task in tasks if is_open_task(task, DEPROVISION)]
    awaiting = [
        account
        for account in accounts
        if is_active_account(account) and (account["app"], account["user"]) not in covered and not entitled(account)
    ]
    return deprovision_tasks, awaiting
