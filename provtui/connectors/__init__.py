"""Downstream connectors: how provtui talks to the applications it provisions."""
