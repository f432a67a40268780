"""What every part of the service is given: the change factory, the read model and the actor's access."""

from __future__ import annotations

from provtui.model.directory import Directory
from provtui.service.change import Access, Changes


class Part:
    def __init__(self, changes: Changes, directory: Directory, access: Access):
        self.changes = changes
        self.directory = directory
        self.access = access
        self.store = directory.store  # reads outside a change go through the read model's store
