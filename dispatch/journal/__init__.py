"""The journal's actions (confirm, cancel, resend, sent manually) and what follows them."""
