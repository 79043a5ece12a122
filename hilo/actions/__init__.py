"""Every write to Hilo\x27s data: validate, persist in one transaction, record the event, publish."""
