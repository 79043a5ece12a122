"""Contact import from CSV: a column mapping, a dry run, and a report of the rows refused.

A file is bounded (`MAX_CSV_BYTES`, `MAX_ROWS`, `MAX_COLUMNS`); a file that breaks a bound, is not
UTF-8 or is not CSV is refused whole with a stable code. Each row becomes a contact: a row whose
e-mail addresses or phone numbers already belong to one contact updates that contact (name and
language when given, attributes merged, new identities added); a row naming nobody known creates
one. A row that cannot be imported is reported with its line number and a stable code, and the
others go in, CHUNK rows per transaction. A dry run reports the same without writing anything.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hilo.contacts.actions import contact_realtime
from hilo.contacts.directory import ATTRIBUTE_KEY, MAX_ATTRIBUTE_VALUE, MAX_IDENTITIES, owners
from hilo.contacts.identity import IdentityKind, IdentityRef, InvalidIdentity, normalize
from hilo.contacts.models import Contact, Identity
from hilo.errors import ActionError
from hilo.i18n import N_
from hilo.runtime import Record, Runtime, Tx

MAX_CSV_BYTES = 2 * 1024 * 1024
MAX_ROWS = 5000
MAX_COLUMNS = 100
MAX_NAME = 255
# Rows written per transaction.
CHUNK = 200
# How many rejected rows a report lists (it counts them all).
MAX_REPORTED = 500

# What a column can become; attributes are "attribute:<key>".
FIELD_TARGETS = ("name", "email", "phone", "locale", "ignore")
ATTRIBUTE_PREFIX = "attribute:"
# Several addresses in one cell: the export writes them separated by "; ".
_SEPARATORS = re.compile(r"[;,\n]")
_FORMULA_START = ("=", "+", "-", "@")
_LOCALE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8}){0,2}$")
# Header names the suggested mapping recognises (lower-cased, English and Spanish).
_SUGGESTED = {
    "name": ("name", "full name", "nombre", "nombre completo", "contact"),
    "email": ("email", "e-mail", "emails", "e-mails", "mail", "correo", "correo electrónico"),
    "phone": ("phone", "phones", "phone number", "mobile", "telephone", "whatsapp", "teléfono", "telefono", "móvil"),
    "locale": ("locale", "language", "lang", "idioma"),
}


@dataclass(frozen=True)
class RowProblem:
    """Why one row of the file was not imported: a stable code and a msgid with its values."""

    line: int
    code: str
    reason: str
    column: str | None = None
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImportRow:
    line: int
    name: str | None
    locale: str | None
    identities: list[IdentityRef]
    attributes: dict[str, str]
    contact_id: int | None = None


@dataclass
class ImportReport:
    """What an import did (or, on a dry run, would do)."""

    dry_run: bool
    columns: list[str]
    mapping: dict[str, str]
    rows: int = 0
    created: int = 0
    updated: int = 0
    rejected_count: int = 0
    rejected: list[RowProblem] = field(default_factory=list)

    def reject(self, problem: RowProblem) -> None:
        self.rejected_count += 1
        if len(self.rejected) < MAX_REPORTED:
            self.rejected.append(problem)


def _file_error(code: str, reason: str, status: int = 422, **values: Any) -> ActionError:
    return ActionError(code, reason, status, **values)


def read_csv(data: bytes) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Decode and split a CSV file: its header and its records with their line numbers.

    Comma, semicolon and tab separate cells (spreadsheets in Spanish write semicolons);
    a UTF-8 byte-order mark is dropped.
    """
    if len(data) > MAX_CSV_BYTES:
        raise _file_error(
            "csv_too_large", N_("The file is larger than {n} MB: split it."), 413, n=MAX_CSV_BYTES // (1024 * 1024)
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _file_error(
            "csv_not_utf8", N_("The file is not UTF-8 text: save it as CSV UTF-8 and try again.")
        ) from None
    if "\x00" in text:
        raise _file_error("csv_not_text", N_("The file is not a CSV text file."))
    first_line = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise _file_error("csv_empty", N_("The file has no header row: the first line names the columns."))
        header = [cell.strip() for cell in header]
        if len(header) > MAX_COLUMNS:
            raise _file_error("csv_too_many_columns", N_("The file has more than {n} columns."), n=MAX_COLUMNS)
        if len(set(header)) != len(header) or "" in header:
            raise _file_error("csv_header_invalid", N_("Every column needs a name of its own in the header row."))
        records: list[tuple[int, list[str]]] = []
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            if len(records) == MAX_ROWS:
                raise _file_error(
                    "csv_too_many_rows", N_("The file has more than {n} rows: split it."), 413, n=MAX_ROWS
                )
            records.append((reader.line_num, record))
    except csv.Error as exc:
        raise _file_error(
            "csv_malformed", N_("The file is not valid CSV near line {line}."), line=reader.line_num
        ) from exc
    return header, records


def suggested_mapping(columns: list[str]) -> dict[str, str]:
    """A first mapping from the header's names; what it does not recognise is ignored.

    Columns named `attr.<key>` (as the export writes them) become custom attributes.
    """
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for column in columns:
        lowered = column.strip().lower()
        target = "ignore"
        for name, aliases in _SUGGESTED.items():
            if lowered in aliases and (name not in used or name in ("email", "phone")):
                target = name
        if target == "ignore" and lowered.startswith("attr.") and ATTRIBUTE_KEY.fullmatch(column.strip()[5:]):
            target = ATTRIBUTE_PREFIX + column.strip()[5:]
        used.add(target)
        mapping[column] = target
    return mapping


def check_mapping(columns: list[str], mapping: dict[str, str]) -> dict[str, str]:
    """Validate a mapping of the file's columns; a column it leaves out is ignored."""
    unknown = [c for c in mapping if c not in columns]
    if unknown:
        raise _file_error("mapping_unknown_column", N_('The file has no column "{column}".'), column=unknown[0][:100])
    complete = {column: mapping.get(column, "ignore") for column in columns}
    single: set[str] = set()
    for target in complete.values():
        if target.startswith(ATTRIBUTE_PREFIX):
            if not ATTRIBUTE_KEY.fullmatch(target[len(ATTRIBUTE_PREFIX) :]):
                raise _file_error(
                    "mapping_attribute_invalid",
                    N_("An attribute name is 1 to 64 letters, digits, dots, dashes or underscores."),
                )
        elif target not in FIELD_TARGETS:
            raise _file_error(
                "mapping_target_invalid", N_('"{target}" is not something a column can become.'), target=target[:100]
            )
        if target in ("name", "locale") or target.startswith(ATTRIBUTE_PREFIX):
            if target in single:
                raise _file_error(
                    "mapping_target_repeated", N_('Only one column can become "{target}".'), target=target[:100]
                )
            single.add(target)
    if not {"email", "phone"} & set(complete.values()):
        raise _file_error(
            "mapping_no_identity", N_("Map at least one column to e-mail or phone: contacts are matched by them.")
        )
    return complete


def _row(line: int, cells: dict[str, str], mapping: dict[str, str], region: str) -> ImportRow | RowProblem:
    """Turn one record into an import row, or say why it cannot be imported."""
    name = locale = None
    refs: list[IdentityRef] = []
    attributes: dict[str, str] = {}
    for column, target in mapping.items():
        value = cells.get(column, "").strip()
        if value[:1] == "'" and value[1:2] in _FORMULA_START:
            value = value[1:]  # the quote the export puts before a formula character
        if not value or target == "ignore":
            continue
        if target == "name":
            if len(value) > MAX_NAME:
                return RowProblem(
                    line, "name_too_long", N_("The name is longer than {n} characters."), column, {"n": MAX_NAME}
                )
            name = value
        elif target == "locale":
            if not _LOCALE.fullmatch(value):
                return RowProblem(line, "locale_invalid", N_("The language is not a code such as en or es-MX."), column)
            locale = value.replace("_", "-")
        elif target in ("email", "phone"):
            for part in _SEPARATORS.split(value):
                if not part.strip():
                    continue
                try:
                    ref = normalize(IdentityRef(IdentityKind(target), part.strip()), region)
                except InvalidIdentity as exc:
                    return RowProblem(line, exc.code, exc.reason, column)
                if ref not in refs:
                    refs.append(ref)
        else:
            if len(value) > MAX_ATTRIBUTE_VALUE:
                return RowProblem(
                    line,
                    "attribute_value_too_long",
                    N_("An attribute value is at most {n} characters."),
                    column,
                    {"n": MAX_ATTRIBUTE_VALUE},
                )
            attributes[target[len(ATTRIBUTE_PREFIX) :]] = value
    if not refs:
        return RowProblem(line, "row_no_identity", N_("The row has no e-mail address or phone number."))
    if len(refs) > MAX_IDENTITIES:
        return RowProblem(
            line, "too_many_identities", N_("A contact holds at most {n} identities."), None, {"n": MAX_IDENTITIES}
        )
    return ImportRow(line, name, locale, refs, attributes)


def parse(
    data: bytes, mapping: dict[str, str] | None, region: str, *, dry_run: bool
) -> tuple[ImportReport, list[ImportRow]]:
    """Read the file and check every row on its own (no database): the rows to import and the report so far."""
    columns, records = read_csv(data)
    complete = check_mapping(columns, mapping if mapping is not None else suggested_mapping(columns))
    report = ImportReport(dry_run=dry_run, columns=columns, mapping=complete, rows=len(records))
    rows: list[ImportRow] = []
    seen: dict[tuple[str, str], int] = {}
    for line, record in records:
        if len(record) > len(columns):
            report.reject(RowProblem(line, "row_too_many_cells", N_("The row has more cells than the header.")))
            continue
        found = _row(line, dict(zip(columns, record, strict=False)), complete, region)
        if isinstance(found, RowProblem):
            report.reject(found)
            continue
        repeated = next(
            (seen[(str(r.kind), r.value)] for r in found.identities if (str(r.kind), r.value) in seen), None
        )
        if repeated is not None:
            report.reject(
                RowProblem(
                    line,
                    "duplicate_in_file",
                    N_("An address of this row is already on line {other}."),
                    None,
                    {"other": repeated},
                )
            )
            continue
        for ref in found.identities:
            seen[(str(ref.kind), ref.value)] = line
        rows.append(found)
    return report, rows


def _match(session: Session, report: ImportReport, rows: list[ImportRow]) -> list[ImportRow]:
    """Find the contact each row names; a row naming two different contacts is refused."""
    refs = [ref for row in rows for ref in row.identities]
    owned: dict[tuple[str, str], int] = {}
    for start in range(0, len(refs), 500):
        owned.update(owners(session, refs[start : start + 500]))
    kept = []
    for row in rows:
        contact_ids = {owned[(str(r.kind), r.value)] for r in row.identities if (str(r.kind), r.value) in owned}
        if len(contact_ids) > 1:
            report.reject(
                RowProblem(
                    row.line,
                    "identities_of_different_contacts",
                    N_("The addresses of this row belong to different contacts: merge them first."),
                )
            )
            continue
        row.contact_id = next(iter(contact_ids), None)
        kept.append(row)
    return kept


def _identity_row(tx: Tx, contact_id: int, ref: IdentityRef) -> dict[str, Any]:
    return {
        "contact_id": contact_id,
        "kind": str(ref.kind),
        "value": ref.value,
        "verified": False,
        "opted_out": False,
        "created_at": tx.now,
    }


def _write(tx: Tx, report: ImportReport, rows: list[ImportRow]) -> tuple[int, int]:
    """Write one chunk of rows: returns how many contacts it created and updated.

    Rows go in with Core statements and their events with one statement per chunk: the ORM's
    flush grows with every object a session holds, which makes thousands of rows quadratic.
    """
    kept = _match(tx.session, report, rows)
    known_ids = [row.contact_id for row in kept if row.contact_id is not None]
    current = {
        c.id: c
        for c in tx.session.execute(
            select(Contact.id, Contact.name, Contact.locale, Contact.custom_attributes).where(Contact.id.in_(known_ids))
        )
    }
    held = set(
        tx.session.execute(
            select(Identity.contact_id, Identity.kind, Identity.value).where(Identity.contact_id.in_(known_ids))
        ).tuples()
    )
    identities: list[dict[str, Any]] = []
    records: list[Record] = []
    new_rows = [row for row in kept if row.contact_id is None]
    if new_rows:
        inserted = [
            {
                "name": row.name,
                "locale": row.locale,
                "custom_attributes": dict(row.attributes),
                "created_at": tx.now,
                "updated_at": tx.now,
            }
            for row in new_rows
        ]
        new_ids = tx.session.execute(
            insert(Contact).returning(Contact.id, sort_by_parameter_order=True), inserted
        ).scalars()
        for row, contact_id in zip(new_rows, new_ids, strict=True):
            identities.extend(_identity_row(tx, contact_id, ref) for ref in row.identities)
            data = {"via": "import", "identities": [[str(r.kind), r.value] for r in row.identities]}
            records.append(Record("contact.created", contact_id=contact_id, data=data))
    updated = 0
    for row in kept:
        if row.contact_id is None:
            continue
        contact = current[row.contact_id]
        changes: dict[str, Any] = {}
        if row.name is not None and row.name != contact.name:
            changes["name"] = [contact.name, row.name]
        if row.locale is not None and row.locale != contact.locale:
            changes["locale"] = [contact.locale, row.locale]
        attributes = {**(contact.custom_attributes or {}), **row.attributes}
        if attributes != (contact.custom_attributes or {}):
            changes["custom_attributes"] = [contact.custom_attributes, attributes]
        if changes:
            values = {key: change[1] for key, change in changes.items()}
            tx.session.execute(update(Contact).where(Contact.id == contact.id).values(**values, updated_at=tx.now))
            records.append(
                Record("contact.updated", contact_id=contact.id, data={"changes": changes}, realtime=contact_realtime())
            )
        for ref in row.identities:
            if (contact.id, str(ref.kind), ref.value) not in held:
                identities.append(_identity_row(tx, contact.id, ref))
                data = {"kind": str(ref.kind), "value": ref.value}
                records.append(Record("identity.added", contact_id=contact.id, data=data, realtime=contact_realtime()))
        updated += 1
    if identities:
        tx.session.execute(insert(Identity), identities)
    tx.record_many(records)
    return len(new_rows), updated


def import_contacts(
    runtime: Runtime, actor_agent_id: int | None, report: ImportReport, rows: list[ImportRow]
) -> ImportReport:
    """Create or update a contact per row (on a dry run, only count them); return the report.

    Rows are written CHUNK at a time, each chunk in its own transaction, so an import never
    holds the database for long (SQLite has one writer: webhooks wait for it). Each chunk
    looks its rows' addresses up again, so it sees what earlier chunks and other agents
    wrote; a chunk that a concurrent change spoils (an address taken meanwhile) is redone
    row by row, and the rows that still fail are reported as `row_conflict`.
    """
    if report.dry_run:
        with runtime.db.read() as session:
            for row in _match(session, report, rows):
                if row.contact_id is None:
                    report.created += 1
                else:
                    report.updated += 1
    else:
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            try:
                _commit(runtime, actor_agent_id, report, chunk)
            except (ActionError, IntegrityError):
                for row in chunk:
                    try:
                        _commit(runtime, actor_agent_id, report, [row])
                    except (ActionError, IntegrityError):
                        report.reject(
                            RowProblem(
                                row.line,
                                "row_conflict",
                                N_("The row's contact changed during the import: import it again."),
                            )
                        )
    report.rejected.sort(key=lambda problem: problem.line)
    return report


def _commit(runtime: Runtime, actor_agent_id: int | None, report: ImportReport, rows: list[ImportRow]) -> None:
    """Write rows in one transaction; count them in the report only once it committed."""
    partial = ImportReport(dry_run=False, columns=report.columns, mapping=report.mapping)
    with runtime.transaction(actor_agent_id) as tx:
        created, updated = _write(tx, partial, rows)
    report.created += created
    report.updated += updated
    for problem in partial.rejected:
        report.reject(problem)
