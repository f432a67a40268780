"""The inbound SCIM endpoint (#20): scim2-server over the service."""
