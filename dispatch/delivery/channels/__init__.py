"""Delivery channels: Telegram and the SMS providers. Each returns an `Outcome`."""
