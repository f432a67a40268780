"""The terminal UI: a Textual app over the Service API (screens never touch the store)."""
