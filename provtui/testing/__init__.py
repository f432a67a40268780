"""Test helpers that ship with provtui: a fault-injecting SCIM server."""
