"""Database engine, sessions, model base and Alembic migrations."""
