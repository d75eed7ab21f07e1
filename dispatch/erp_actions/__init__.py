"""Buttons back to the ERP (CONTRACT §9): signed callback data, presses, their outbox."""
