"""The directory as stored: its schema, the read model over it, the audit trail, the history index
and the outbox of pending provisioning work."""
