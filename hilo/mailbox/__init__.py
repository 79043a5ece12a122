"""The mailbox service: polls every IMAP-connected e-mail channel account and ingests its mail."""
