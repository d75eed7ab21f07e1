"""Delivery: workers claim due notifications and send them through the channels;
retries, rate limits, delivery receipts."""
