"""Libraries kept in the database: the event types' templates edited through the API."""
