"""Moved: the schema is provtui.model.schema, the read model provtui.model.directory (kept while imports move)."""

from provtui.model.directory import *  # noqa: F403
from provtui.model.directory import FEW_USERS, Directory  # noqa: F401
from provtui.model.schema import *  # noqa: F403
from provtui.model.schema import INDEXES, Reader, account_key, assignment_key, group_key, group_subject, member_key, user_subject  # noqa: F401
