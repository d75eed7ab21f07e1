"""Operations: SMS balance and alerts, e-mail, housekeeping, the test SMS, metrics."""
