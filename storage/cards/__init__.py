"""The living order card: each client's current Telegram message per document."""
