"""What every HTTP surface shares: request dependencies (sign-in, CSRF, client address), error schemas,
rate limits and the websocket fan-out to agents."""
