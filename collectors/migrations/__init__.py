"""Alembic migrations of the sample store's schema (run by `collectors._migrations`)."""
