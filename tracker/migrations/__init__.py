"""Alembic migrations; applied with `python -m tracker db upgrade`."""
