"""Row and table validation against an Arrow schema, with errors that name the field."""

from collections.abc import Callable, Iterable, Mapping

import pyarrow as pa

RowRule = Callable[[Mapping], str | None]


class SchemaError(ValueError):
    """A row or table does not match its schema; the message names the field."""


def validate_row(
    row: Mapping,
    schema: pa.Schema,
    enums: Mapping[str, frozenset[str]] = {},
    rules: Iterable[RowRule] = (),
) -> None:
    """Raise SchemaError unless `row` has exactly the schema's fields, each of its type."""
    unknown = sorted(set(row) - set(schema.names))
    if unknown:
        raise SchemaError(f"unknown field {unknown[0]!r} (schema has {', '.join(schema.names)})")
    for field in schema:
        value = row.get(field.name)
        if value is None:
            if field.name not in row or not field.nullable:
                raise SchemaError(f"field {field.name!r} is required")
            continue
        _check_value(value, field.type, field.name)
        allowed = enums.get(field.name)
        if allowed is not None and value not in allowed:
            raise SchemaError(f"field {field.name!r}: {value!r} is not one of {sorted(allowed)}")
    for rule in rules:
        message = rule(row)
        if message:
            raise SchemaError(message)


def _check_value(value, arrow_type: pa.DataType, name: str) -> None:
    """Raise unless value converts to arrow_type; lists and structs are checked element-wise,
    because Arrow would otherwise read a string as a list of characters and fill missing
    struct keys with nulls."""
    if pa.types.is_list(arrow_type):
        if not isinstance(value, (list, tuple)):
            raise SchemaError(f"field {name!r}: {value!r} is not a list")
        for item in value:
            if item is None and not arrow_type.value_field.nullable:
                raise SchemaError(f"field {name!r}: null item in a list")
            if item is not None:
                _check_value(item, arrow_type.value_type, name)
        return
    if pa.types.is_struct(arrow_type):
        if not isinstance(value, dict):
            raise SchemaError(f"field {name!r}: {value!r} is not a mapping")
        members = {arrow_type.field(i).name: arrow_type.field(i) for i in range(arrow_type.num_fields)}
        unknown = sorted(set(value) - set(members))
        if unknown:
            raise SchemaError(f"field {name!r}: unknown member {unknown[0]!r}")
        for member in members.values():
            item = value.get(member.name)
            if item is None:
                if not member.nullable:
                    raise SchemaError(f"field {name!r}: member {member.name!r} is required")
                continue
            _check_value(item, member.type, f"{name}.{member.name}")
        return
    if pa.types.is_string(arrow_type) and not isinstance(value, str):
        raise SchemaError(f"field {name!r}: {value!r} is not a string")
    try:
        pa.array([value], type=arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as error:
        raise SchemaError(f"field {name!r}: {value!r} is not {arrow_type} ({error})") from None


def validate_table(
    table: pa.Table,
    schema: pa.Schema,
    enums: Mapping[str, frozenset[str]] = {},
    rules: Iterable[RowRule] = (),
) -> None:
    """Raise SchemaError unless the table has the schema's columns and every row is valid."""
    missing = [name for name in schema.names if name not in table.column_names]
    if missing:
        raise SchemaError(f"column {missing[0]!r} is missing")
    extra = [name for name in table.column_names if name not in schema.names]
    if extra:
        raise SchemaError(f"unknown column {extra[0]!r}")
    for field in schema:
        actual = table.schema.field(field.name).type
        if actual != field.type:
            raise SchemaError(f"column {field.name!r} has type {actual}, expected {field.type}")
    rules = list(rules)
    for index, row in enumerate(table.to_pylist()):
        try:
            validate_row(row, schema, enums, rules)
        except SchemaError as error:
            raise SchemaError(f"row {index}: {error}") from None
