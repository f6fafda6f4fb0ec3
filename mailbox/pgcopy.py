"""Inserting model rows with PostgreSQL's COPY: a batch of new mail costs one COPY per table, not a multi-row INSERT."""

from __future__ import annotations

from django.db import connection, models

# Exact classes: a subclass may prepare its values (an encrypted field, say).
_AS_IS_FIELDS = {
    models.CharField, models.TextField, models.BooleanField, models.IntegerField, models.BigIntegerField,
    models.SmallIntegerField, models.PositiveIntegerField, models.PositiveBigIntegerField,
    models.PositiveSmallIntegerField, models.AutoField, models.BigAutoField, models.ForeignKey,
}  # fmt: skip


def copy_in(model, rows: list) -> None:
    """Insert ``rows`` with PostgreSQL's COPY: constraints and indexes apply as for INSERT.

    Columns left to the database: an unset primary key (its identity) and the
    search document (built after ingest, see ``mailbox.search.index_pending``).
    """
    if not rows:
        return
    pk_set = rows[0].pk is not None
    fields = [
        f for f in model._meta.concrete_fields if f.attname != "search_document" and (pk_set or not f.primary_key)
    ]
    # Text, numbers, booleans and ids go to psycopg as they are: Django's per-value preparation
    # returns them unchanged and was a third of the COPY's cost. Other fields (dates, JSON) use it.
    prepared = [(f.attname, None if type(f) in _AS_IS_FIELDS else f) for f in fields]
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            values = [getattr(row, attname) for attname, _field in prepared]
            copy.write_row(
                [value if field is None else field.get_db_prep_save(value, connection)
                 for value, (_attname, field) in zip(values, prepared, strict=True)]
            )  # fmt: skip
    for row in rows:  # as bulk_create leaves them: saved rows of this database
        row._state.adding = False
        row._state.db = connection.alias
