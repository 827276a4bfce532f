"""Alembic migrations for the connector's database (``wacrm db upgrade``)."""
