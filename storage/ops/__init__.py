"""Tables of the operations side: alert state, scheduled-job runs, stored settings."""
