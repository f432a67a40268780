"""The soak: a whole organisation under a storm of changes, faults and kills, then the invariants.

    python -m provtui.testing.soak --minutes 30            # the long form (20,000 people, 10 SCIM apps)
    python -m provtui.testing.soak --minutes 1 --people 1500 --apps 3 --manual-apps 1 --groups 30 --rules 6

Builds the organisation (an HR CSV import through the CLI, an LDAP import from a throwaway slapd,
groups, rules, SCIM apps on fault-injecting scim2-servers, manual apps mailing an aiosmtpd server),
then for ``--minutes`` runs two writers -- one driving the CLI, one the Service in-process, each
its own process -- while a ``provtui worker`` provisions.  Faults fire at random on every app; the
worker and the writers are SIGKILLed at random times and restarted; one app is down for a window.
Then the faults stop, quarantined apps are resumed and failed accounts queued again (as an admin
would), the queue drains, and the invariant checker runs, with every change a writer was told
succeeded (its acknowledgement log, fsync'd after each) checked against the store and the audit
trail.  Exits 1 if an invariant fails or the queue does not drain within ``--converge-minutes``.

Writers own disjoint parts of the organisation (users by login hash, rules by index), so each
one's acknowledged changes have a well-defined final value; a change a writer started but was
killed before hearing the answer to may or may not have happened, so what it touches is only
checked in the audit trail for the changes acknowledged before it.

The parts: options (Options, SoakResult), organisation (building it), writers and acks (the changes and what was
acknowledged), processes (the children), storm (the storm, converging, the summary); ``__main__`` the command.
"""

from provtui.testing.soak.acks import AckLog, read_acknowledged
from provtui.testing.soak.options import Options, SoakResult
from provtui.testing.soak.storm import run_soak, summary
from provtui.testing.soak.writers import WRITERS, Change, Writer

__all__ = ["WRITERS", "AckLog", "Change", "Options", "SoakResult", "Writer", "read_acknowledged", "run_soak", "summary"]
