"""Buttons back to the ERP: the presses and their outbox."""
