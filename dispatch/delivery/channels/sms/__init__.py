"""SMS providers: one adapter per provider's HTTP API, all behind `SmsProvider`."""
