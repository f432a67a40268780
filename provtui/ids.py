"""Identifiers provtui makes: short random hex, unique enough per store."""

import uuid


def new_id() -> str:
    return uuid.uuid4().hex[:12]
