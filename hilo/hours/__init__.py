"""Business hours: calendars of weekly periods in a time zone, minus holidays and closed dates, and the
working-time arithmetic SLAs, routing, automation and the widget share."""
