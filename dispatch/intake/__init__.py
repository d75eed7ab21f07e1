"""Intake: an ERP event becomes planned, rendered notifications in one transaction."""
