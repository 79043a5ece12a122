"""The agent workspace: the inbox, conversations and administration in the browser."""
