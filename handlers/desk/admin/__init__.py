"""The desk's admin-only pages: notify settings, event types and their templates, clients,
SMS services and the balance."""
