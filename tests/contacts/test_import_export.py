"""Contact import from CSV (mapping, dry run, rejected rows) and export as CSV, over REST."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from hilo.contacts import exporting, importing
from hilo.contacts.exporting import safe_cell
from hilo.errors import ActionError
from tests.support import Api

GOOD = (
    "Full name;Mail;Mobile;Plan;Notes\n"
    "Ana Díaz;ana@example.com;600 111 222;gold;likes calls\n"
    "Bruno;bruno@example.com;;silver;\n"
)
MAPPING = {"Full name": "name", "Mail": "email", "Mobile": "phone", "Plan": "attribute:plan", "Notes": "ignore"}


def upload(api: Api, data: str | bytes, mapping: dict[str, str] | None = None, *, dry_run: bool = True) -> Any:
    body = data.encode() if isinstance(data, str) else data
    form: dict[str, str] = {"dry_run": "true" if dry_run else "false"}
    if mapping is not None:
        form["mapping"] = orjson.dumps(mapping).decode()
    return api.client.post(
        "/api/v1/imports/contacts",
        headers=api.headers,
        files={"file": ("contacts.csv", body, "text/csv")},
        data=form,
    )


def contacts(api: Api) -> dict[str, dict[str, Any]]:
    items = api.ok(api.get("/api/v1/contacts", params={"limit": 100}))["items"]
    return {c["name"]: c for c in items}


def test_dry_run_reports_and_writes_nothing_then_the_import_writes(api: Api) -> None:
    # when: a dry run with a mapping
    report = api.ok(upload(api, GOOD, MAPPING))
    # then: what would happen, and nothing written
    assert (report["dry_run"], report["rows"], report["created"], report["updated"]) == (True, 2, 2, 0)
    assert report["columns"] == ["Full name", "Mail", "Mobile", "Plan", "Notes"]
    assert report["rejected"] == [] and report["rejected_count"] == 0
    assert contacts(api) == {}
    # when: imported for real
    done = api.ok(upload(api, GOOD, MAPPING, dry_run=False))
    # then
    assert (done["dry_run"], done["created"], done["updated"]) == (False, 2, 0)
    found = contacts(api)
    assert found["Ana Díaz"]["custom_attributes"] == {"plan": "gold"}
    assert sorted(i["value"] for i in found["Ana Díaz"]["identities"]) == ["+34600111222", "ana@example.com"]
    assert [i["value"] for i in found["Bruno"]["identities"]] == ["bruno@example.com"]
    # when: the same file again, with Ana's new plan
    again = api.ok(upload(api, GOOD.replace("gold", "platinum"), MAPPING, dry_run=False))
    # then: the rows update the contacts they name, nobody is doubled
    assert (again["created"], again["updated"]) == (0, 2)
    assert contacts(api)["Ana Díaz"]["custom_attributes"] == {"plan": "platinum"}
    assert len(contacts(api)) == 2


def test_rejected_rows_are_reported_with_line_and_code_and_the_rest_goes_in(api: Api) -> None:
    # given: a contact who owns one address, another who owns a phone
    api.ok(
        api.post("/api/v1/contacts", {"name": "Owner A", "identities": [{"kind": "email", "value": "a@x.com"}]}), 201
    )
    api.ok(
        api.post("/api/v1/contacts", {"name": "Owner B", "identities": [{"kind": "phone", "value": "+34699000111"}]}),
        201,
    )
    data = (
        "name,email,phone\n"
        "Good One,good@example.com,\n"  # line 2
        "No Address,,\n"  # line 3
        "Bad Mail,not-an-address,\n"  # line 4
        "Bad Phone,,12\n"  # line 5
        "Twice,good@example.com,\n"  # line 6
        "Both,a@x.com,+34699000111\n"  # line 7
        f"{'x' * 300},long@example.com,\n"  # line 8
        "Extra,extra@example.com,,surplus\n"  # line 9
    )
    # when
    report = api.ok(upload(api, data, dry_run=False))
    # then: the suggested mapping read the header; each refused row has its line and a stable code
    assert report["mapping"] == {"name": "name", "email": "email", "phone": "phone"}
    assert [(r["line"], r["code"], r["column"]) for r in report["rejected"]] == [
        (3, "row_no_identity", None),
        (4, "email_invalid", "email"),
        (5, "phone_invalid", "phone"),
        (6, "duplicate_in_file", None),
        (7, "identities_of_different_contacts", None),
        (8, "name_too_long", "name"),
        (9, "row_too_many_cells", None),
    ]
    assert report["rejected"][3]["message"] == "An address of this row is already on line 2."
    assert (report["created"], report["rejected_count"]) == (1, 7)
    assert set(contacts(api)) == {"Owner A", "Owner B", "Good One"}


def test_file_errors_refuse_the_whole_file_with_a_stable_code(api: Api) -> None:
    cases = [
        (b"\xff\xfename\n", None, 422, "csv_not_utf8"),
        (b"", None, 422, "csv_empty"),
        (b"name,name\nA,B\n", None, 422, "csv_header_invalid"),
        (b'name,email\n"unclosed,a@b.com\n', None, 422, "csv_malformed"),
        (b"name\nAna\n", None, 422, "mapping_no_identity"),
        (b"name,email\nAna,a@b.com\n", {"Nope": "name"}, 422, "mapping_unknown_column"),
        (b"name,email\nAna,a@b.com\n", {"name": "birthday"}, 422, "mapping_target_invalid"),
        (
            b"name,email\nAna,a@b.com\n",
            {"name": "attribute:bad key", "email": "email"},
            422,
            "mapping_attribute_invalid",
        ),
        (b"a,b,email\n1,2,a@b.com\n", {"a": "name", "b": "name", "email": "email"}, 422, "mapping_target_repeated"),
        (b"email\n" + b"x@example.com\n" * (importing.MAX_ROWS + 1), None, 413, "csv_too_many_rows"),
        (b"email\n" + b"x" * importing.MAX_CSV_BYTES, None, 413, "csv_too_large"),
    ]
    for data, mapping, status, code in cases:
        response = upload(api, data, mapping, dry_run=False)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), data[:40]
    bad_json = api.client.post(
        "/api/v1/imports/contacts",
        headers=api.headers,
        files={"file": ("c.csv", b"email\na@b.com\n", "text/csv")},
        data={"mapping": "[1, 2]"},
    )
    assert (bad_json.status_code, bad_json.json()["error"]["code"]) == (422, "mapping_invalid")
    assert contacts(api) == {}


def test_only_administrators_and_supervisors_import_and_export(api: Api) -> None:
    # given
    agent = api.as_new_agent("agent@example.com", "agent")
    supervisor = api.as_new_agent("sup@example.com", "supervisor")
    # when / then
    refused = upload(agent, GOOD, MAPPING)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")
    exported = agent.get("/api/v1/exports/contacts.csv")
    assert (exported.status_code, exported.json()["error"]["code"]) == (403, "forbidden")
    assert supervisor.ok(upload(supervisor, GOOD, MAPPING))["created"] == 2
    assert supervisor.get("/api/v1/exports/contacts.csv").status_code == 200


def test_export_round_trips_through_the_import(api: Api) -> None:
    # given: contacts with several addresses, attributes, and a name a spreadsheet would run
    api.ok(upload(api, GOOD, MAPPING, dry_run=False))
    api.ok(
        api.post(
            "/api/v1/contacts",
            {
                "name": '=HYPERLINK("http://evil")',
                "identities": [
                    {"kind": "email", "value": "one@example.com"},
                    {"kind": "email", "value": "two@example.com"},
                    {"kind": "phone", "value": "+34 622 333 444"},
                ],
                "custom_attributes": {"city": "Sevilla; centro"},
            },
        ),
        201,
    )
    # when
    response = api.get("/api/v1/exports/contacts.csv")
    # then: a CSV file with the attribute columns, formula cells neutralised
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith('attachment; filename="contacts-')
    text = response.content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["id", "name", "locale", "emails", "phones", "created_at", "attr.city", "attr.plan"]
    by_name = {r["name"]: r for r in rows}
    assert by_name["Ana Díaz"]["phones"] == "+34600111222" and by_name["Ana Díaz"]["attr.plan"] == "gold"
    tricky = by_name['\'=HYPERLINK("http://evil")']
    assert (tricky["emails"], tricky["phones"]) == ("one@example.com; two@example.com", "+34622333444")
    # when: the export goes back in with the suggested mapping
    report = api.ok(upload(api, response.content, dry_run=False))
    # then: every row names its contact: nothing new, nothing refused, nothing changed
    assert report["mapping"]["emails"] == "email" and report["mapping"]["attr.city"] == "attribute:city"
    assert (report["created"], report["updated"], report["rejected"]) == (0, 3, [])
    after = contacts(api)
    assert after['=HYPERLINK("http://evil")']["custom_attributes"] == {"city": "Sevilla; centro"}
    assert len(after['=HYPERLINK("http://evil")']["identities"]) == 3


def test_export_streams_many_contacts_in_batches(api: Api, app_client: TestClient) -> None:
    # given: more contacts than one batch
    data = "email,name\n" + "".join(f"c{i}@example.com,Customer {i}\n" for i in range(1203))
    assert api.ok(upload(api, data, dry_run=False))["created"] == 1203
    # when
    with api.client.stream("GET", "/api/v1/exports/contacts.csv", headers=api.headers) as response:
        chunks = list(response.iter_text())
    # then: every contact once
    rows = list(csv.DictReader(io.StringIO("".join(chunks).lstrip("\ufeff"))))
    assert len(rows) == 1203 and len({r["id"] for r in rows}) == 1203
    # and: the body is produced batch by batch, each batch of contacts read on its own
    lines = exporting.export_lines(app_client.app.state.runtime)  # type: ignore[attr-defined]
    assert next(lines).startswith("\ufeffid,name")
    pieces = list(lines)
    assert [piece.count("\r\n") for piece in pieces] == [500, 500, 203]


# -- the parser on its own ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (["Name", "E-mail", "Teléfono"], {"Name": "name", "E-mail": "email", "Teléfono": "phone"}),
        (
            ["nombre", "correo", "idioma", "attr.vip"],
            {"nombre": "name", "correo": "email", "idioma": "locale", "attr.vip": "attribute:vip"},
        ),
        (["id", "created_at", "attr.bad key"], {"id": "ignore", "created_at": "ignore", "attr.bad key": "ignore"}),
    ],
)
def test_suggested_mapping(header: list[str], expected: dict[str, str]) -> None:
    assert importing.suggested_mapping(header) == expected


def test_semicolons_tabs_and_a_byte_order_mark_are_read() -> None:
    for data in (b"\xef\xbb\xbfname;email\nA;a@b.com\n", b"name\temail\nA\ta@b.com\n", b"name,email\r\nA,a@b.com\r\n"):
        header, records = importing.read_csv(data)
        assert header == ["name", "email"] and records == [(2, ["A", "a@b.com"])]


def test_blank_lines_are_skipped_and_line_numbers_kept() -> None:
    header, records = importing.read_csv(b"email\n\na@b.com\n,\nc@d.com\n")
    assert [line for line, _ in records] == [3, 5]


def test_too_many_columns_is_refused() -> None:
    with pytest.raises(ActionError) as raised:
        importing.read_csv(",".join(f"c{i}" for i in range(importing.MAX_COLUMNS + 1)).encode())
    assert raised.value.code == "csv_too_many_columns"


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("@cmd", "'@cmd"),
        ("-2", "'-2"),
        ("+34600111222", "+34600111222"),
        ("+34600111222; +34600111333", "+34600111222; +34600111333"),
        ("+cmd", "'+cmd"),
        ("Ana", "Ana"),
        (None, ""),
    ],
)
def test_cells_a_spreadsheet_would_run_are_quoted(value: str | None, cell: str) -> None:
    assert safe_cell(value) == cell
