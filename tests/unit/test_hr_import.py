"""HR CSV import: the mapping file, parsing (lines, encodings, rejections) and the import plan."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provtui.domain.errors import InvalidInput
from provtui.domain.hr_import import parse_csv
from provtui.domain.hr_mapping import DEFAULT_MAPPING, ColumnMapping, ImportFileError, load_mapping
from provtui.domain.import_actions import ImportPlan, deprovision_ratio
from provtui.domain.import_plan import plan_import
from provtui.domain.import_rows import Intent, ParsedFile, Row
from provtui.domain.users import validate_profile

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"  # the repository's fixtures/
HR = FIXTURES / "hr"
SUMMARY_KEYS = ["created", "updated", "unchanged", "suspended", "deactivated", "reactivated", "rejected"]


def csv_bytes(*lines: str, newline: str = "\n", bom: bool = False) -> bytes:
    return (b"\xef\xbb\xbf" if bom else b"") + (newline.join(lines) + newline).encode()


HEADER = "Employee ID,First Name,Last Name,Work Email,Job Title,Department,Status"


def person(number, first, last, status="Active", title="Engineer", department="R&D", email=None):
    email = email if email is not None else f"{first.lower()}.{last.lower()}@example.com"
    return f"{number},{first},{last},{email},{title},{department},{status}"


def user(uid, login, state="active", source="workday", **profile):
    profile.setdefault("email", login if "@" in login else f"{login}@example.com")
    profile.setdefault("firstName", "First")
    profile.setdefault("lastName", "Last")
    profile.setdefault("displayName", f"{profile['firstName']} {profile['lastName']}")
    return {"id": uid, "login": login, "state": state, "source": source, "profile": {"login": login, **profile}}


def plan_of(*lines, existing=(), source="workday", **kw) -> ImportPlan:
    parsed = parse_csv(csv_bytes(HEADER, *lines))
    return plan_import(parsed, {u["id"]: u for u in existing}, source=source, **kw)


def only(plan: ImportPlan):
    assert len(plan.actions) == 1, plan.actions
    return plan.actions[0]


# -- the mapping file ----------------------------------------------------------------------


def test_mapping_example_loads():
    mapping = load_mapping((HR / "mapping.example").read_text())
    columns = dict(mapping.columns)
    assert columns["Person ID"] == "employeeNumber"
    assert columns["HR Status"] == "@status"
    assert columns["Salary"] == "@ignore"
    assert columns["Start = Date"] == "startDate"  # quoted header containing =
    assert mapping.key == "employeeNumber" and mapping.delimiter == ","
    assert mapping.intent("GARDEN leave") is Intent.SUSPENDED
    assert mapping.intent("Deceased") is Intent.DEACTIVATED
    assert mapping.intent("terminated") is Intent.DEACTIVATED  # the defaults are still known


def test_mapping_file_drives_parsing():
    mapping = load_mapping((HR / "mapping.example").read_text())
    data = csv_bytes(
        "Person ID,Network Login,Email - Work,Preferred Name,Given Name,Family Name,Job,HR Status,Salary,Start = Date,Work Email",
        "7,ADA,ada@example.com,,Augusta,Lovelace,Eng,Garden Leave,100000,2020-01-01,other@example.com",
        "8,alan,alan@example.com,Al,Alan,Turing,Eng,Notice Served,90000,2021-01-01,",
    )
    parsed = parse_csv(data, mapping)
    assert not parsed.rejections
    ada, alan = parsed.rows
    assert ada.profile == {
        "employeeNumber": "7",
        "login": "ada",
        "email": "ada@example.com",
        "firstName": "Augusta",
        "lastName": "Lovelace",
        "title": "Eng",
        "startDate": "2020-01-01",
    }
    assert ada.intent is Intent.SUSPENDED and ada.status == "Garden Leave"
    assert alan.profile["firstName"] == "Al" and alan.intent is Intent.ACTIVE
    assert "Salary" in parsed.ignored_columns
    # the file maps email, so the default "Work Email" column does not compete for it
    assert "Work Email" in parsed.ignored_columns
    assert parsed.key == "employeeNumber" and not parsed.login_derived


def test_mapping_comments_sections_and_defaults_off():
    text = "\ufeff# a comment\n; another\n\nID = employeeNumber  # inline\n[ columns ]\nMail=email\nGiven = firstName\nSurname = lastName\n[options]\ndefaults = no\nkey = EMPLOYEENUMBER\ndelimiter = semicolon\n"
    mapping = load_mapping(text)
    assert mapping.columns == (("ID", "employeeNumber"), ("Mail", "email"), ("Given", "firstName"), ("Surname", "lastName"))
    assert mapping.key == "employeeNumber" and mapping.delimiter == ";"
    parsed = parse_csv(b"ID;Mail;Given;Surname;Work Email\n1;a@example.com;A;B;x@example.com\n", mapping)
    assert parsed.rows[0].profile == {
        "employeeNumber": "1",
        "email": "a@example.com",
        "firstName": "A",
        "lastName": "B",
        "login": "a@example.com",
    }
    assert parsed.rows[0].intent is None  # defaults off: "Status" would not be recognised either
    assert parsed.ignored_columns == ("Work Email",)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("Email = email\nFirst Name firstName\n", 2, "expected NAME = VALUE"),
        ("# c\n\nEmail = e-mail\n", 3, "not an attribute name"),
        ("Email = email\nE-Mail = email\n", 2, "already mapped on line 1"),
        ("[colums]\n", 1, "unknown section"),
        ("[options]\nkeys = login\n", 2, "unknown option"),
        ("[options]\nkey = email\n", 2, "key must be login or employeeNumber"),
        ("[options]\ndefaults = maybe\n", 2, "defaults must be yes or no"),
        ("[options]\ndelimiter = ab\n", 2, "delimiter must be one character"),
        ("[options]\nkey = login\nkey = login\n", 3, "already set on line 2"),
        ("[status]\nGarden Leave = holiday\n", 2, "is not a status"),
        ("[status]\nLOA 2 = on leave\nloa-2 = suspended\n", 3, "already mapped on line 2"),
        ('"Start = Date = startDate\n', 1, "not closed"),
        ("--- = title\n", 1, "not a column name"),
        ("Email =   # nothing\n", 1, "expected NAME = VALUE"),
    ],
)
def test_mapping_errors_name_the_line(text, line, fragment):
    with pytest.raises(ImportFileError) as error:
        load_mapping(text)
    assert error.value.line == line
    assert error.value.field == "mapping"
    assert fragment in error.value.message and f"line {line}:" in str(error.value)
    assert isinstance(error.value, InvalidInput)  # the CLI's exit code 2


def test_mapping_without_defaults_must_map_the_required_attributes():
    with pytest.raises(ImportFileError, match="no column is mapped to firstName"):
        load_mapping("[options]\ndefaults = no\n[columns]\nMail = email\n")


def test_status_words_in_the_mapping_may_be_known_synonyms():
    mapping = load_mapping("[status]\nSeconded = on leave\nAlumni = terminated\nStarting = pre-hire\n")
    assert mapping.intent("seconded") is Intent.SUSPENDED
    assert mapping.intent("ALUMNI") is Intent.DEACTIVATED
    assert mapping.intent("starting") is Intent.STAGED


@pytest.mark.parametrize(
    ("header", "attribute"),
    [
        ("Employee ID", "employeeNumber"),
        ("employee_number", "employeeNumber"),
        ("employeeNumber", "employeeNumber"),
        ("EMPLOYEE NUMBER", "employeeNumber"),
        ("Employee #", "employeeNumber"),
        ("Work Email", "email"),
        ("work_email", "email"),
        ("E-mail", "email"),
        ("Email Address", "email"),
        ("Legal First Name", "firstName"),
        ("Preferred Name", "firstName"),
        ("first_name", "firstName"),
        ("Last Name", "lastName"),
        ("LASTNAME", "lastName"),
        ("Job Title", "title"),
        ("Title", "title"),
        ("Business Title", "title"),
        ("Department", "department"),
        ("Manager", "manager"),
        ("Manager Email", "manager"),
        ("Supervisor", "manager"),
        ("Location", "location"),
        ("Work Location", "location"),
        ("Username", "login"),
        ("Login", "login"),
        ("User Name", "login"),
        ("Cost Center", "costCenter"),
    ],
)
def test_default_headers(header, attribute):
    base = {"email": "Work Email", "firstName": "First Name", "lastName": "Last Name"}
    base[attribute] = header
    headers = list(dict.fromkeys(base.values()))
    parsed = parse_csv(",".join(headers).encode() + b"\n")
    assert parsed.columns[attribute][0] == header


@pytest.mark.parametrize("header", ["Status", "Employment Status", "worker_status", "EMPLOYEE STATUS"])
def test_default_status_headers(header):
    parsed = parse_csv(f"Email,First Name,Last Name,{header}\n".encode())
    assert parsed.status_column == header


@pytest.mark.parametrize(
    ("status", "intent"),
    [
        ("Hired", Intent.ACTIVE),
        ("active", Intent.ACTIVE),
        ("New Hire", Intent.ACTIVE),
        ("new-hire", Intent.ACTIVE),
        ("Onboarding", Intent.ACTIVE),
        ("Returned", Intent.ACTIVE),
        ("REHIRED", Intent.ACTIVE),
        ("rehire", Intent.ACTIVE),
        ("Full-Time", Intent.ACTIVE),
        ("Contractor", Intent.ACTIVE),
        ("On Leave", Intent.SUSPENDED),
        ("on_leave", Intent.SUSPENDED),
        ("Leave", Intent.SUSPENDED),
        ("LOA", Intent.SUSPENDED),
        ("Leave of Absence", Intent.SUSPENDED),
        ("Suspended", Intent.SUSPENDED),
        ("Furloughed", Intent.SUSPENDED),
        ("Terminated", Intent.DEACTIVATED),
        ("termed", Intent.DEACTIVATED),
        ("Inactive", Intent.DEACTIVATED),
        ("Left", Intent.DEACTIVATED),
        ("Offboarded", Intent.DEACTIVATED),
        ("  terminated  ", Intent.DEACTIVATED),
        ("Pre-Hire", Intent.STAGED),
        ("pending hire", Intent.STAGED),
        ("Retiring soon", None),
        ("", None),
    ],
)
def test_status_synonyms(status, intent):
    assert DEFAULT_MAPPING.intent(status) is intent


# -- parsing -------------------------------------------------------------------------------


def test_workday_fixture():
    data = (HR / "workday_export.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data
    parsed = parse_csv(data)
    assert parsed.key == "employeeNumber" and parsed.login_derived and parsed.status_column == "Worker Status"
    assert parsed.columns["firstName"] == ("Preferred First Name", "Legal First Name")
    assert parsed.columns["department"] == ("Supervisory Organization",)
    assert set(parsed.ignored_columns) == {"Hire Date", "Home Address"}
    lines = {row.line: row for row in parsed.rows}
    # Grace's row (line 4) holds a quoted address with an embedded CRLF: Edsger starts on line 6.
    assert sorted(lines) == [2, 3, 4, 6, 7, 9, 12, 13, 14]
    ada = lines[2]
    assert ada.key == "1001" and ada.login == "ada.lovelace@example.com"
    assert ada.profile["firstName"] == "Ada"  # the preferred name wins...
    assert lines[3].profile["firstName"] == "Alan"  # ...and the legal one fills in when it is empty
    assert ada.profile["title"] == "Director, Platform Engineering"
    assert ada.profile["costCenter"] == "4100 - R&D, Platform"
    assert lines[13].profile["title"] == 'Engineer "Compilers"'
    assert lines[14].profile["location"] == "São Paulo"
    assert lines[12].profile["lastName"] is None  # rejected only when planned as a new user
    assert [(r.intent, r.status) for r in (lines[3], lines[6], lines[7], lines[9], lines[14])] == [
        (Intent.SUSPENDED, "On Leave"),
        (Intent.DEACTIVATED, "Terminated"),
        (Intent.ACTIVE, "Rehired"),
        (Intent.STAGED, "Pre-Hire"),
        (Intent.SUSPENDED, "LOA"),
    ]
    assert [r.as_dict() for r in parsed.rejections] == [
        {"line": 8, "column": "Employee ID", "reason": "employeeNumber '1006' is also on line 15"},
        {"line": 10, "column": "Work Email", "reason": "'tim.berners-lee@' is not an email address"},
        {
            "line": 11,
            "column": "Worker Status",
            "reason": "unknown employment status 'Contingent Worker' (map it in the [status] section of the mapping file)",
        },
        {"line": 15, "column": "Employee ID", "reason": "employeeNumber '1006' is also on line 8"},
    ]
    plan = plan_import(parsed, {}, source="workday")
    summary = plan.summary()
    assert {k: v for k, v in summary.items() if k != "rejected"} == {
        "created": 7,
        "updated": 0,
        "unchanged": 1,
        "suspended": 0,
        "deactivated": 0,
        "reactivated": 0,
    }
    assert {"line": 12, "column": "Legal Last Name", "reason": "is required for a new user"} in summary["rejected"]
    assert [r["line"] for r in summary["rejected"]] == [8, 10, 11, 12, 15]


def test_bamboohr_fixture():
    parsed = parse_csv((HR / "bamboohr_export.csv").read_bytes())
    assert not parsed.rejections
    assert parsed.columns["employeeNumber"] == ("Employee #",)
    assert parsed.columns["manager"] == ("Reporting to",)
    assert parsed.status_column == "Employment Status"
    by_key = {row.key: row for row in parsed.rows}
    assert by_key["2002"].profile["firstName"] == "Don" and by_key["2002"].profile["title"] == "Principal Engineer, Algorithms"
    assert by_key["2003"].profile["firstName"] == "John"
    assert {k: r.intent for k, r in by_key.items()} == {
        "2001": Intent.ACTIVE,
        "2002": Intent.ACTIVE,
        "2003": Intent.ACTIVE,
        "2004": Intent.ACTIVE,
        "2005": Intent.SUSPENDED,
        "2006": Intent.DEACTIVATED,
        "2007": Intent.SUSPENDED,
        "2008": Intent.ACTIVE,
    }
    plan = plan_import(parsed, {}, source="bamboohr")
    created = {a.login: a for a in plan.actions}
    assert created["ymatsumoto@example.org"].state_after == "suspended"
    assert created["ymatsumoto@example.org"].lifecycle == ("activate", "suspend")
    assert "gvanrossum@example.org" not in created  # terminated before ever being imported
    assert plan.summary()["created"] == 7 and plan.summary()["unchanged"] == 1


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("bom", [False, True])
def test_bom_and_line_ends_do_not_matter(newline, bom):
    data = csv_bytes(
        HEADER,
        person(1, "Ada", "Lovelace"),
        '2,Alan,Turing,alan@example.com,"Multi\nline",R&D,On Leave',
        person(3, "Grace", "Hopper"),
        newline=newline,
        bom=bom,
    )
    parsed = parse_csv(data)
    assert parsed.columns["employeeNumber"] == ("Employee ID",)  # the BOM is not part of the first header
    assert [(r.line, r.key) for r in parsed.rows] == [(2, "1"), (3, "2"), (5, "3")]
    assert parsed.rows[1].profile["title"] == "Multi\nline"


def test_line_numbers_count_embedded_newlines_and_blank_lines():
    data = csv_bytes(
        HEADER,
        "",
        '1,Ada,Lovelace,ada@example.com,"one\ntwo\nthree",R&D,Active',
        ",,,,,,",
        '2,Alan,Turing,bad-email,"x",R&D,Active',
        '3,"Grace\r\n",Hopper,grace@example.com,CTO,R&D,Weird',
    )
    parsed = parse_csv(data)
    assert [(r.line, r.key) for r in parsed.rows] == [(3, "1")]
    assert [(r.line, r.column) for r in parsed.rejections] == [(7, "Work Email"), (8, "Status")]


def test_invalid_utf8_is_one_clean_error():
    data = csv_bytes(HEADER, person(1, "Ada", "Lovelace")) + "3,Jos\xe9".encode("latin-1") + b",X,j@example.com,T,D,Active\n"
    with pytest.raises(ImportFileError) as error:
        parse_csv(data)
    offset = data.index(b"\xe9")
    assert error.value.line == 3 and error.value.field == "file"
    assert f"byte {offset} (0xe9) is not UTF-8" in error.value.message


def test_invalid_utf8_offset_counts_the_bom():
    data = b"\xef\xbb\xbf" + b"Email,First Name,Last Name\n\xff\n"
    with pytest.raises(ImportFileError, match="byte 30 "):
        parse_csv(data)


def test_utf16_is_refused_clearly():
    with pytest.raises(ImportFileError, match="UTF-16"):
        parse_csv("Email,First Name,Last Name\n".encode("utf-16"))


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\n\r\n\n"])
def test_empty_file(data):
    with pytest.raises(ImportFileError, match="empty"):
        parse_csv(data)


def test_header_only():
    parsed = parse_csv(csv_bytes(HEADER))
    assert parsed.rows == () and parsed.rejections == ()


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("Employee ID,First Name,Last Name,Status", "email"),
        ("Employee ID,Work Email,Last Name,Status", "firstName"),
        ("Employee ID,Work Email,First Name", "lastName"),
    ],
)
def test_missing_required_column_is_a_file_error(header, field):
    with pytest.raises(ImportFileError) as error:
        parse_csv(csv_bytes(header, "1,a,b,c"))
    assert error.value.field == field and error.value.line == 1


def test_duplicate_mapped_header_is_a_file_error():
    with pytest.raises(ImportFileError) as error:
        parse_csv(csv_bytes("Email,First Name,Last Name,last_name", "a@example.com,A,B,C"))
    assert error.value.field == "last_name" and "two columns" in error.value.message


def test_duplicate_unmapped_headers_and_empty_headers_are_ignored():
    parsed = parse_csv(csv_bytes("Email,First Name,Last Name,Notes,Notes,,", "a@example.com,A,B,x,y,,"))
    assert len(parsed.rows) == 1 and parsed.ignored_columns == ("Notes", "Notes")


def test_key_employee_number_needs_its_column():
    mapping = load_mapping("[options]\nkey = employeeNumber\n")
    with pytest.raises(ImportFileError, match="no column of the file maps to it"):
        parse_csv(csv_bytes("Email,First Name,Last Name", "a@example.com,A,B"), mapping)


def test_wrong_number_of_fields():
    parsed = parse_csv(csv_bytes(HEADER, person(1, "Ada", "Lovelace") + ",extra", "2,Alan,Turing", person(3, "Grace", "Hopper") + ",,"))
    assert [r.as_dict() for r in parsed.rejections] == [
        {"line": 2, "column": None, "reason": "has 8 fields; the header has 7"},
        {"line": 3, "column": None, "reason": "has 3 fields; the header has 7"},
    ]
    assert [r.key for r in parsed.rows] == ["3"]  # trailing empty fields are tolerated


def test_unclosed_quote_is_a_file_error_naming_where_it_starts():
    data = csv_bytes(HEADER, person(1, "Ada", "Lovelace"), '2,Alan,Turing,alan@example.com,"Title,R&D,Active', person(3, "Grace", "Hopper"))
    with pytest.raises(ImportFileError) as error:
        parse_csv(data)
    assert error.value.line == 3 and "never closed" in error.value.message


def test_malformed_quoting_rejects_the_row_only():
    data = csv_bytes(HEADER, '1,Ada,Lovelace,ada@example.com,"Eng"x,R&D,Active', person(2, "Alan", "Turing"))
    parsed = parse_csv(data)
    assert [r.line for r in parsed.rejections] == [2] and "not valid CSV" in parsed.rejections[0].reason
    assert [r.key for r in parsed.rows] == ["2"]


def test_huge_field_is_a_file_error():
    data = csv_bytes(HEADER, person(1, "Ada", "Lovelace", title="x" * 200_000))
    with pytest.raises(ImportFileError, match="longer than 128 KiB") as error:
        parse_csv(data)
    assert error.value.line == 2


def test_long_values_and_control_characters_are_rejected():
    parsed = parse_csv(
        csv_bytes(
            HEADER,
            person(1, "Ada", "Lovelace", title="x" * 2000),
            person(2, "Al\x00an", "Turing", email="alan@example.com"),
            person(3, "Grace", "Hopper", department="R&D\x07"),
        )
    )
    assert [r.as_dict() for r in parsed.rejections] == [
        {"line": 2, "column": "Job Title", "reason": "is longer than 1024 characters"},
        {"line": 3, "column": "First Name", "reason": "contains a control character"},
        {"line": 4, "column": "Department", "reason": "contains a control character"},
    ]


def test_control_characters_in_unmapped_columns_do_not_matter():
    parsed = parse_csv(csv_bytes("Email,First Name,Last Name,Notes", "a@example.com,A,B,x\x00y"))
    assert len(parsed.rows) == 1


def test_values_are_stripped_and_nfc_normalised():
    decomposed = "Jose\u0301"
    parsed = parse_csv(csv_bytes(HEADER, f"1,  {decomposed}  ,Lovelace,ada@example.com,  Eng ,R&D,Active"))
    assert parsed.rows[0].profile["firstName"] == "Jos\u00e9" and parsed.rows[0].profile["title"] == "Eng"


def test_duplicate_keys_reject_every_occurrence():
    parsed = parse_csv(
        csv_bytes(
            HEADER,
            person(1, "Ada", "Lovelace"),
            person(2, "Alan", "Turing"),
            person(1, "Ada", "Byron", email="ab@example.com"),
            person(4, "Grace", "Hopper", email="ADA.lovelace@example.com"),
            person(1, "A", "L", email="al@example.com"),
        )
    )
    assert [r.as_dict() for r in parsed.rejections] == [
        {"line": 2, "column": "Work Email", "reason": "login 'ada.lovelace@example.com' is also on line 5"},  # first problem only
        {"line": 4, "column": "Employee ID", "reason": "employeeNumber '1' is also on line 2, 6"},
        {"line": 5, "column": "Work Email", "reason": "login 'ada.lovelace@example.com' is also on line 2"},
        {"line": 6, "column": "Employee ID", "reason": "employeeNumber '1' is also on line 2, 4"},
    ]
    assert [r.key for r in parsed.rows] == ["2"]


def test_login_is_the_lowercased_email_without_a_login_column():
    parsed = parse_csv(
        csv_bytes(
            HEADER,
            person(1, "Ada", "Lovelace", email="Ada.Lovelace@Example.COM"),
            person(2, "Bob", "O'Neil", email="bob.o'neil@example.com"),
        )
    )
    assert parsed.login_derived and parsed.rows[0].login == "ada.lovelace@example.com"
    assert parsed.rows[0].profile["email"] == "Ada.Lovelace@Example.COM"
    assert parsed.rejections[0].as_dict() == {
        "line": 3,
        "column": "Work Email",
        "reason": '"bob.o\'neil@example.com" cannot be used as a login (letters, digits and . _ @ + -)',
    }


def test_login_column():
    parsed = parse_csv(
        csv_bytes("Username,Email,First Name,Last Name", "ADA,ada@example.com,Ada,Lovelace", "a b,ab@example.com,A,B", ",c@example.com,C,D")
    )
    assert not parsed.login_derived and parsed.key == "login"
    assert [(r.key, r.login) for r in parsed.rows] == [("ada", "ada")]
    assert [(r.line, r.column) for r in parsed.rejections] == [(3, "Username"), (4, "Username")]
    assert "is not a valid login" in parsed.rejections[0].reason


def test_empty_key_and_empty_or_unknown_status():
    parsed = parse_csv(
        csv_bytes(
            HEADER,
            person("", "Ada", "Lovelace"),
            person(2, "Alan", "Turing", status=""),
            person(3, "Grace", "Hopper", status="Sabbatical?"),
        )
    )
    assert [r.as_dict() for r in parsed.rejections] == [
        {"line": 2, "column": "Employee ID", "reason": "the employeeNumber is empty"},
        {"line": 3, "column": "Status", "reason": "the employment status is empty"},
        {
            "line": 4,
            "column": "Status",
            "reason": "unknown employment status 'Sabbatical?' (map it in the [status] section of the mapping file)",
        },
    ]


def test_excel_sep_line():
    parsed = parse_csv(b"sep=;\r\nEmail;First Name;Last Name\r\na@example.com;A;B\r\n")
    assert [(r.line, r.login) for r in parsed.rows] == [(3, "a@example.com")]


def test_no_status_column_means_no_intent():
    parsed = parse_csv(csv_bytes("Email,First Name,Last Name", "a@example.com,A,B"))
    assert parsed.status_column is None and parsed.rows[0].intent is None


def test_people_fixture_parses_with_defaults():
    parsed = parse_csv((FIXTURES / "people.csv").read_bytes())
    assert not parsed.rejections and parsed.key == "employeeNumber" and not parsed.login_derived
    assert parsed.rows[0].profile["login"] == "alovelace" and parsed.status_column is None


def test_invalid_attribute_name_in_a_handmade_mapping():
    with pytest.raises(ImportFileError, match="not an attribute name"):
        parse_csv(
            csv_bytes("Email,First Name,Last Name,X", "a@example.com,A,B,c"),
            ColumnMapping(columns=(*DEFAULT_MAPPING.columns, ("X", "bad name"))),
        )


# -- the plan --------------------------------------------------------------------------------


def test_new_users_by_status():
    plan = plan_of(
        person(1, "Ada", "Lovelace"),
        person(2, "Alan", "Turing", "On Leave"),
        person(3, "Grace", "Hopper", "Pre-Hire"),
        person(4, "Edsger", "Dijkstra", "Terminated"),
        person(5, "Barbara", "Liskov", "Returned"),
    )
    by_login = {a.login: a for a in plan.actions}
    assert set(by_login) == {
        "ada.lovelace@example.com",
        "alan.turing@example.com",
        "grace.hopper@example.com",
        "barbara.liskov@example.com",
    }
    ada = by_login["ada.lovelace@example.com"]
    assert ada.created and ada.user_id is None and ada.state_before is None
    assert (ada.lifecycle, ada.state_after, ada.outcomes) == (("activate",), "active", ("created",))
    assert ada.profile == {
        "employeeNumber": "1",
        "firstName": "Ada",
        "lastName": "Lovelace",
        "email": "ada.lovelace@example.com",
        "title": "Engineer",
        "department": "R&D",
        "login": "ada.lovelace@example.com",
        "displayName": "Ada Lovelace",
    }
    assert ada.profile == validate_profile(ada.profile)
    assert (by_login["alan.turing@example.com"].lifecycle, by_login["alan.turing@example.com"].state_after) == (
        ("activate", "suspend"),
        "suspended",
    )
    assert (by_login["grace.hopper@example.com"].lifecycle, by_login["grace.hopper@example.com"].state_after) == ((), "staged")
    assert by_login["barbara.liskov@example.com"].state_after == "active"
    assert plan.summary() == {
        "created": 4,
        "updated": 0,
        "unchanged": 1,
        "suspended": 0,
        "deactivated": 0,
        "reactivated": 0,
        "rejected": [],
    }


def test_summary_shape_is_the_cli_json():
    plan = plan_of(person(1, "Ada", "Lovelace"), person(2, "Alan", "Turing", "Huh"))
    summary = plan.summary()
    assert list(summary) == SUMMARY_KEYS
    assert all(type(summary[k]) is int for k in SUMMARY_KEYS[:-1])
    assert summary["rejected"] == [
        {"line": 3, "column": "Status", "reason": "unknown employment status 'Huh' (map it in the [status] section of the mapping file)"}
    ]
    assert json.loads(json.dumps(summary)) == summary
    assert json.loads(json.dumps(plan.details())) == plan.details()


def test_updates_name_exactly_the_changed_attributes():
    ada = user(
        "u1",
        "ada.lovelace@example.com",
        employeeNumber="1",
        firstName="Ada",
        lastName="Lovelace",
        title="Junior",
        department="R&D",
        manager="grace",
    )
    plan = plan_of(person(1, "Ada", "Lovelace", title="Senior"), existing=[ada])
    action = only(plan)
    assert action.user_id == "u1" and action.outcomes == ("updated",) and action.lifecycle == ()
    # title changed; manager is not a column of this file, so it is left alone
    assert action.changes == {"title": ("Junior", "Senior")}
    assert action.profile["title"] == "Senior" and action.profile["manager"] == "grace"
    assert action.state_before == action.state_after == "active"
    assert plan.summary()["updated"] == 1 and plan.summary()["unchanged"] == 0


def test_unchanged():
    ada = user(
        "u1", "ada.lovelace@example.com", employeeNumber="1", firstName="Ada", lastName="Lovelace", title="Engineer", department="R&D"
    )
    plan = plan_of(person(1, "Ada", "Lovelace"), existing=[ada])
    assert plan.actions == () and plan.summary()["unchanged"] == 1


def test_empty_cell_clears_an_optional_attribute_but_keeps_a_required_one():
    ada = user(
        "u1", "ada.lovelace@example.com", employeeNumber="1", firstName="Ada", lastName="Lovelace", title="Engineer", department="R&D"
    )
    action = only(plan_of("1,,Lovelace,ada.lovelace@example.com,Engineer,,Active", existing=[ada]))
    assert action.changes == {"department": ("R&D", None)}
    assert "department" not in action.profile and action.profile["firstName"] == "Ada"


def test_display_name_follows_a_name_change_unless_it_was_customised():
    ada = user("u1", "ada.lovelace@example.com", employeeNumber="1", firstName="Ada", lastName="Byron", title="Engineer", department="R&D")
    action = only(plan_of(person(1, "Ada", "Lovelace", email="ada.lovelace@example.com"), existing=[ada]))
    assert action.changes == {"lastName": ("Byron", "Lovelace"), "displayName": ("Ada Byron", "Ada Lovelace")}
    custom = {**ada, "profile": {**ada["profile"], "displayName": "Countess Lovelace"}}
    action = only(plan_of(person(1, "Ada", "Lovelace", email="ada.lovelace@example.com"), existing=[custom]))
    assert action.changes == {"lastName": ("Byron", "Lovelace")}


@pytest.mark.parametrize(
    ("state", "status", "lifecycle", "after", "outcomes"),
    [
        ("active", "On Leave", ("suspend",), "suspended", ("suspended",)),
        ("suspended", "Returned", ("unsuspend",), "active", ("reactivated",)),
        ("suspended", "Active", ("unsuspend",), "active", ("reactivated",)),
        ("deprovisioned", "Rehired", ("reactivate",), "active", ("reactivated",)),
        ("active", "Terminated", ("deactivate",), "deprovisioned", ("deactivated",)),
        ("suspended", "Terminated", ("deactivate",), "deprovisioned", ("deactivated",)),
        ("staged", "Terminated", ("deactivate",), "deprovisioned", ("deactivated",)),
        ("staged", "Hired", ("activate",), "active", ("updated",)),
        ("staged", "On Leave", ("activate", "suspend"), "suspended", ("suspended",)),
        ("deprovisioned", "On Leave", ("reactivate", "suspend"), "suspended", ("suspended",)),
    ],
)
def test_lifecycle_from_status(state, status, lifecycle, after, outcomes):
    ada = user(
        "u1",
        "ada.lovelace@example.com",
        state=state,
        employeeNumber="1",
        firstName="Ada",
        lastName="Lovelace",
        title="Engineer",
        department="R&D",
    )
    plan = plan_of(person(1, "Ada", "Lovelace", status), existing=[ada])
    action = only(plan)
    assert (action.lifecycle, action.state_before, action.state_after, action.outcomes) == (lifecycle, state, after, outcomes)
    assert action.changes == {}
    for outcome in outcomes:
        assert plan.summary()[outcome] == 1


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("active", "Active"),
        ("suspended", "On Leave"),
        ("deprovisioned", "Terminated"),
        ("deleted", "Terminated"),
        ("staged", "Pre-Hire"),
        ("active", "Pre-Hire"),
        ("deprovisioned", "Pre-Hire"),
    ],
)
def test_status_already_reflected_is_unchanged(state, status):
    ada = user(
        "u1",
        "ada.lovelace@example.com",
        state=state,
        employeeNumber="1",
        firstName="Ada",
        lastName="Lovelace",
        title="Engineer",
        department="R&D",
    )
    plan = plan_of(person(1, "Ada", "Lovelace", status), existing=[ada])
    assert plan.actions == () and plan.summary()["unchanged"] == 1


def test_update_and_lifecycle_together_count_in_both():
    ada = user(
        "u1", "ada.lovelace@example.com", employeeNumber="1", firstName="Ada", lastName="Lovelace", title="Engineer", department="R&D"
    )
    action = only(plan_of(person(1, "Ada", "Lovelace", "Terminated", title="Former"), existing=[ada]))
    assert action.outcomes == ("updated", "deactivated") and action.changes == {"title": ("Engineer", "Former")}


def test_deleted_user_cannot_come_back():
    ada = user("u1", "ada.lovelace@example.com", state="deleted", employeeNumber="1")
    plan = plan_of(person(1, "Ada", "Lovelace", "Rehired"), existing=[ada])
    assert plan.actions == ()
    assert plan.summary()["rejected"] == [
        {"line": 2, "column": "Status", "reason": "ada.lovelace@example.com was deleted in provtui: it cannot be changed"}
    ]


def test_no_status_column_creates_active_users_and_leaves_lifecycles_alone():
    existing = [
        user("u1", "a@example.com", state="suspended", firstName="A", lastName="B", displayName="A B"),
        user("u2", "c@example.com", state="deprovisioned", firstName="C", lastName="D", displayName="C D"),
    ]
    parsed = parse_csv(csv_bytes("Email,First Name,Last Name", "a@example.com,A,B", "c@example.com,C,D", "e@example.com,E,F"))
    plan = plan_import(parsed, {u["id"]: u for u in existing}, source="workday")
    assert [(a.login, a.lifecycle, a.state_after) for a in plan.actions] == [("e@example.com", ("activate",), "active")]
    assert plan.summary()["unchanged"] == 2


def test_match_by_employee_number_renames_the_login():
    ada = user("u1", "alovelace", employeeNumber="1", firstName="Ada", lastName="Lovelace", email="ada@example.com")
    parsed = parse_csv(csv_bytes("Employee ID,Username,Email,First Name,Last Name", "1,ada.byron,ada@example.com,Ada,Lovelace"))
    action = only(plan_import(parsed, {"u1": ada}, source="workday"))
    assert action.user_id == "u1" and action.login == "ada.byron" and action.changes == {"login": ("alovelace", "ada.byron")}
    assert action.profile["login"] == "ada.byron"


def test_login_taken_by_another_user_is_rejected():
    ada = user("u1", "alovelace", employeeNumber="1", firstName="Ada", lastName="Lovelace", email="ada@example.com")
    alan = user("u2", "aturing", employeeNumber="2", firstName="Alan", lastName="Turing", email="alan@example.com")
    parsed = parse_csv(csv_bytes("Employee ID,Username,Email,First Name,Last Name", "1,aturing,ada@example.com,Ada,Lovelace"))
    plan = plan_import(parsed, {"u1": ada, "u2": alan}, source="workday", full=True)
    assert plan.actions == ()  # neither is deactivated as missing: the rejected row names both
    assert plan.summary()["rejected"] == [
        {"line": 2, "column": "Username", "reason": "login 'aturing' belongs to another user, not to employee 1 (alovelace)"}
    ]


def test_login_of_a_different_employee_is_rejected():
    ada = user("u1", "ada.lovelace@example.com", state="deprovisioned", employeeNumber="1")
    plan = plan_of(person(9, "Ada", "Lovelace", "Hired"), existing=[ada])
    assert plan.actions == ()
    assert plan.summary()["rejected"] == [
        {"line": 2, "column": "Employee ID", "reason": "ada.lovelace@example.com is employee 1 in provtui, this row is employee 9"}
    ]


def test_employee_number_filled_in_when_missing():
    ada = user("u1", "ada.lovelace@example.com", firstName="Ada", lastName="Lovelace", title="Engineer", department="R&D")
    action = only(plan_of(person(7, "Ada", "Lovelace"), existing=[ada]))
    assert action.changes == {"employeeNumber": (None, "7")}


def test_numbers_stored_as_numbers_compare_equal():
    ada = user("u1", "ada.lovelace@example.com", employeeNumber=1, firstName="Ada", lastName="Lovelace", title="Engineer", department="R&D")
    assert plan_of(person(1, "Ada", "Lovelace"), existing=[ada]).actions == ()


def test_match_by_email_when_logins_are_derived():
    ada = user(
        "u1",
        "alovelace",
        employeeNumber=None,
        firstName="Ada",
        lastName="Lovelace",
        email="Ada.Lovelace@example.com",
        title="Engineer",
        department="R&D",
    )
    ada["profile"].pop("employeeNumber")
    parsed = parse_csv(csv_bytes("Email,First Name,Last Name,Title,Status", "ada.lovelace@example.com,Ada,Lovelace,Boss,Active"))
    action = only(plan_import(parsed, {"u1": ada}, source="workday"))
    # the user keeps its login: a login made from the email names new users, it never renames one
    assert action.user_id == "u1" and action.login == "alovelace"
    assert action.changes == {"email": ("Ada.Lovelace@example.com", "ada.lovelace@example.com"), "title": ("Engineer", "Boss")}


def test_a_user_matched_twice_is_rejected_the_second_time():
    ada = user(
        "u1", "ada.lovelace@example.com", employeeNumber="1", firstName="Ada", lastName="Lovelace", title="Engineer", department="R&D"
    )
    parsed = parse_csv(
        csv_bytes(
            "Employee ID,Username,Email,First Name,Last Name",
            "1,ada,ada@example.com,Ada,Lovelace",
            "2,ada.lovelace@example.com,x@example.com,Ada,Lovelace",
        )
    )
    plan = plan_import(parsed, {"u1": ada}, source="workday")
    assert [a.line for a in plan.actions] == [2]
    assert plan.summary()["rejected"] == [{"line": 3, "column": "Username", "reason": "ada.lovelace@example.com is also matched by line 2"}]


def test_users_of_another_source_are_not_touched():
    grace = user("u1", "grace.hopper@example.com", source="provtui", firstName="Grace", lastName="Hopper")
    alan = user("u2", "alan.turing@example.com", source="bamboohr", employeeNumber="2", firstName="Alan", lastName="Turing")
    plan = plan_of(person(1, "Grace", "Hopper", "Terminated"), person(2, "Alan", "Turing", title="X"), existing=[grace, alan], full=True)
    assert plan.actions == ()
    assert plan.summary()["rejected"] == [
        {
            "line": 2,
            "column": "Work Email",
            "reason": "grace.hopper@example.com is mastered by provtui: the workday import does not change it",
        },
        {
            "line": 3,
            "column": "Work Email",
            "reason": "alan.turing@example.com is mastered by bamboohr: the workday import does not change it",
        },
    ]


def test_adopt_takes_over_provtui_users_only():
    grace = user(
        "u1",
        "grace.hopper@example.com",
        source="provtui",
        firstName="Grace",
        lastName="Hopper",
        title="Engineer",
        department="R&D",
        nickname="Amazing",
    )
    alan = user("u2", "alan.turing@example.com", source="bamboohr", firstName="Alan", lastName="Turing")
    plan = plan_of(person(1, "Grace", "Hopper", "On Leave"), person(2, "Alan", "Turing"), existing=[grace, alan], adopt=True)
    action = only(plan)
    assert action.adopt and action.user_id == "u1" and action.outcomes == ("updated", "suspended")
    assert action.changes == {"employeeNumber": (None, "1")} and action.lifecycle == ("suspend",)
    assert action.profile["nickname"] == "Amazing" and action.attribute_sources is None
    assert plan.summary()["rejected"][0]["reason"].startswith("alan.turing@example.com is mastered by bamboohr")


def test_adopt_without_changes_still_records_the_takeover():
    grace = user(
        "u1",
        "grace.hopper@example.com",
        source="provtui",
        employeeNumber="1",
        firstName="Grace",
        lastName="Hopper",
        title="Engineer",
        department="R&D",
    )
    action = only(plan_of(person(1, "Grace", "Hopper"), existing=[grace], adopt=True))
    assert action.adopt and action.outcomes == ("updated",) and action.changes == {}


def test_priorities_let_a_source_write_attributes_of_another_sources_users():
    alan = user(
        "u1",
        "alan.turing@example.com",
        source="ldap",
        employeeNumber="2",
        firstName="Alan",
        lastName="Turing",
        title="Old",
        department="R&D",
    )
    priorities = {"title": ["workday", "ldap"], "department": ["ldap", "workday"]}
    plan = plan_of(person(2, "Alan", "Turing", "Terminated", title="New", department="Sales"), existing=[alan], priorities=priorities)
    action = only(plan)
    # title: workday outranks ldap; department: it does not; the lifecycle stays ldap's
    assert action.changes == {"title": ("Old", "New")} and action.lifecycle == () and action.state_after == "active"
    assert action.attribute_sources == {"title": "workday"} and action.outcomes == ("updated",)


def test_priorities_keep_a_higher_source_value_on_our_own_users():
    ada = {
        **user(
            "u1", "ada.lovelace@example.com", employeeNumber="1", firstName="Ada", lastName="Lovelace", title="From LDAP", department="R&D"
        ),
        "attribute_sources": {"title": "ldap"},
    }
    priorities = {"title": ["ldap", "workday"]}
    assert plan_of(person(1, "Ada", "Lovelace", title="From HR"), existing=[ada], priorities=priorities).actions == ()
    # without a priority for the attribute, the master source wins and takes the attribute back
    action = only(plan_of(person(1, "Ada", "Lovelace", title="From HR"), existing=[ada]))
    assert action.changes == {"title": ("From LDAP", "From HR")} and action.attribute_sources == {}


def test_owned_attributes_limit_what_the_import_writes():
    ada = user(
        "u1", "ada.lovelace@example.com", employeeNumber="1", firstName="Ada", lastName="Lovelace", title="Engineer", department="R&D"
    )
    owned = frozenset({"title", "employeeNumber"})
    plan = plan_of(
        person(1, "Ada", "Lovelace", title="Lead", department="Sales"), person(2, "Alan", "Turing"), existing=[ada], owned_attributes=owned
    )
    update, create = plan.actions
    assert update.changes == {"title": ("Engineer", "Lead")}
    # a new user still gets the required attributes; the department is not this source's
    assert "department" not in create.profile and create.profile["email"] == "alan.turing@example.com"


def test_full_import_deactivates_this_sources_missing_users():
    existing = [
        user(
            "u1", "ada.lovelace@example.com", employeeNumber="1", firstName="Ada", lastName="Lovelace", title="Engineer", department="R&D"
        ),
        user("u2", "gone@example.com", employeeNumber="2"),
        user("u3", "suspended@example.com", state="suspended", employeeNumber="3"),
        user("u4", "staged@example.com", state="staged", employeeNumber="4"),
        user("u5", "already@example.com", state="deprovisioned", employeeNumber="5"),
        user("u6", "deleted@example.com", state="deleted", employeeNumber="6"),
        user("u7", "native@example.com", source="provtui"),
        user("u8", "other@example.com", source="bamboohr"),
    ]
    plan = plan_of(person(1, "Ada", "Lovelace"), existing=existing, full=True)
    missing = [(a.user_id, a.line, a.lifecycle, a.state_before, a.state_after, a.reason) for a in plan.actions]
    assert missing == [
        ("u2", None, ("deactivate",), "active", "deprovisioned", "missing from the file"),
        ("u3", None, ("deactivate",), "suspended", "deprovisioned", "missing from the file"),
        ("u4", None, ("deactivate",), "staged", "deprovisioned", "missing from the file"),
    ]
    assert plan.summary()["deactivated"] == 3 and plan.summary()["unchanged"] == 1
    assert plan_of(person(1, "Ada", "Lovelace"), existing=existing, full=False).actions == ()


def test_full_import_never_deactivates_a_user_a_rejected_row_names():
    existing = [
        user("u1", "ada.lovelace@example.com", employeeNumber="1"),
        user("u2", "alan.turing@example.com", employeeNumber="2"),
        user("u3", "grace.hopper@example.com", employeeNumber="3"),
        user("u4", "gone@example.com", employeeNumber="4"),
    ]
    plan = plan_of(
        "1,Ada,Lovelace,ada.lovelace@example.com,Eng,R&D,Whatever",  # unknown status
        "2,Alan,Turing,alan.turing@example.com,Eng,R&D",  # wrong number of fields
        "GRACE.HOPPER@EXAMPLE.COM,x,y",  # garbage, but it names Grace
        existing=existing,
        full=True,
        allow_empty=True,  # every row rejected: refused without allow_empty (issue #14)
    )
    assert [a.user_id for a in plan.actions] == ["u4"]
    assert [r["line"] for r in plan.summary()["rejected"]] == [2, 3, 4]


def test_deprovision_ratio():
    existing = [user(f"u{i}", f"user{i}@example.com", employeeNumber=str(i)) for i in range(10)]
    plan = plan_of(*(person(i, "U", str(i), email=f"user{i}@example.com") for i in range(7)), existing=existing, full=True)
    assert plan.deactivations == 3
    assert deprovision_ratio(plan, 10) == pytest.approx(0.3)
    assert deprovision_ratio(plan, 0) == 1.0
    assert deprovision_ratio(plan_of(existing=existing), 10) == 0.0


@pytest.mark.parametrize("source", ["provtui", "", "bad source", "-x"])
def test_source_name_is_checked(source):
    with pytest.raises(InvalidInput) as error:
        plan_of(source=source)
    assert error.value.field == "source"


def test_plain_rows_are_validated_too():
    rows = [
        Row(1, "a", {"login": "a", "email": "not-an-email", "firstName": "A", "lastName": "B"}, Intent.ACTIVE),
        Row(2, "b", {"login": "b", "email": "b@example.com", "firstName": "B", "lastName": "C"}, Intent.ACTIVE),
        Row(3, "b", {"login": "b", "email": "b@example.com", "firstName": "B", "lastName": "C"}, Intent.ACTIVE),
    ]
    plan = plan_import(rows, [], source="workday")
    assert [a.login for a in plan.actions] == ["b"]
    assert [(r.line, r.column) for r in plan.rejected] == [(1, "email"), (3, "login")]


def test_details_for_the_dry_run():
    ada = user(
        "u1", "ada.lovelace@example.com", employeeNumber="1", firstName="Ada", lastName="Lovelace", title="Engineer", department="R&D"
    )
    plan = plan_of(person(1, "Ada", "Lovelace", "On Leave", title="Lead"), existing=[ada])
    assert plan.details() == [
        {
            "line": 2,
            "login": "ada.lovelace@example.com",
            "outcomes": ["updated", "suspended"],
            "lifecycle": ["suspend"],
            "state": ["active", "suspended"],
            "changes": {"title": ["Engineer", "Lead"]},
            "reason": "on leave in HR",
        }
    ]


# -- properties ----------------------------------------------------------------------------

FUZZ = settings(max_examples=int(os.environ.get("HR_FUZZ_EXAMPLES", "200")), deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=600),
        st.binary(max_size=600).map(lambda tail: (HEADER + "\r\n").encode() + tail),
        st.lists(st.sampled_from(list(',"\r\n\x00 ;aé@.1') + ["On Leave", "x@example.com"]), max_size=120).map(
            lambda tail: (HEADER + "\n" + "".join(tail)).encode()
        ),
    )
)
def test_any_bytes_parse_or_fail_cleanly(data):
    try:
        parsed = parse_csv(data)
    except InvalidInput:
        return
    assert isinstance(parsed, ParsedFile)
    assert all(r.line >= 2 for r in parsed.rows) and all(r.line >= 2 for r in parsed.rejections)
    plan_import(parsed, {}, source="fuzz", full=True).summary()


@FUZZ
@given(
    st.lists(
        st.sampled_from(list('=#;[]"@ \n\r\tabcEmailkeystatu') + ["[status]", "[options]", "key", "@status", "email", "defaults", "no"]),
        max_size=80,
    ).map("".join)
)
def test_any_mapping_text_loads_or_fails_with_a_line(text):
    try:
        mapping = load_mapping(text)
    except ImportFileError as error:
        assert error.field == "mapping"
        return
    assert isinstance(mapping, ColumnMapping)
    try:
        parse_csv(b"Email,First Name,Last Name\na@example.com,A,B\n", mapping)
    except ImportFileError as error:  # e.g. "email = x" takes the Email column away from email
        assert error.line == 1


_HEADERS = ["Employee ID", "Work Email", "First Name", "Last Name", "Job Title", "Status", "Notes"]
_cell = st.one_of(
    st.sampled_from(
        ["", " ", "Active", "On Leave", "Terminated", "Rehired", "x@example.com", "A@B.CO", "1", "2", "Ada", '"', ",", "\n", "\r\n"]
    ),
    st.text(max_size=12),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
    st.builds(lambda n: "y" * n, st.integers(1000, 3000)),
)


@FUZZ
@given(st.lists(st.lists(_cell, min_size=5, max_size=9), max_size=12), st.booleans(), st.sampled_from(["\n", "\r\n"]))
def test_random_cells_line_numbers_and_no_crash(rows, bom, newline):
    def quoted(cell):  # as an exporter writes it: quote what holds a delimiter, quote or line break
        return '"' + cell.replace('"', '""') + '"' if any(c in cell for c in ',"\r\n') else cell

    text = ",".join(_HEADERS) + newline
    starts = []
    for row in rows:
        starts.append(len(re.findall(r"\r\n|\r|\n", text)) + 1)  # a physical line ends with CRLF, LF or CR
        text += ",".join(quoted(c) for c in row) + newline
    parsed = parse_csv((b"\xef\xbb\xbf" if bom else b"") + text.encode())  # well-formed: never a file-level error
    seen = sorted([r.line for r in parsed.rows] + [r.line for r in parsed.rejections])
    # one outcome per row that is not blank, at the line the row starts on
    assert seen == [start for start, row in zip(starts, rows, strict=False) if any(c.strip() for c in row)]
    for row in parsed.rows:
        assert row.key and row.login == row.login.strip().lower()
        assert row.profile["email"] is None or "@" in row.profile["email"]
    existing = {
        f"u{i}": user(f"u{i}", r.login, state=s, source=src, employeeNumber=r.key)
        for i, (r, s, src) in enumerate(
            zip(
                parsed.rows,
                ["active", "suspended", "deprovisioned", "deleted", "staged"] * 5,
                ["workday", "workday", "provtui", "workday", "ldap"] * 5,
                strict=False,
            )
        )
    }
    plan = plan_import(parsed, existing, source="workday", full=True)
    for action in plan.actions:
        if action.user_id is not None:
            assert existing[action.user_id]["source"] == "workday" or action.adopt
        if action.created:
            assert action.profile == validate_profile(action.profile)
    assert list(plan.summary()) == SUMMARY_KEYS


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["ada", "alan", "grace", "edsger"]),
            st.sampled_from(["Active", "On Leave", "Terminated", "Pre-Hire"]),
            st.sampled_from(["Eng", "Lead", ""]),
        ),
        max_size=6,
    ),
    st.lists(
        st.tuples(
            st.sampled_from(["ada", "alan", "grace", "edsger", "barbara"]),
            st.sampled_from(["staged", "active", "suspended", "deprovisioned", "deleted"]),
            st.sampled_from(["workday", "provtui", "ldap"]),
        ),
        max_size=5,
        unique_by=lambda t: t[0],
    ),
    st.booleans(),
)
def test_plan_invariants(rows, users, full):
    numbers = {"ada": 1, "alan": 2, "grace": 3, "edsger": 4, "barbara": 5}
    lines = [person(numbers[n], n.title(), "X", status, title=title, email=f"{n}@example.com") for n, status, title in rows]
    existing = [
        user(f"u{n}", f"{n}@example.com", state=state, source=src, employeeNumber=str(numbers[n]), firstName=n.title(), lastName="X")
        for n, state, src in users
    ]
    plan = plan_of(*lines, existing=existing, full=full)
    by_id = {u["id"]: u for u in existing}
    touched = [a.user_id for a in plan.actions if a.user_id]
    assert len(touched) == len(set(touched))
    for action in plan.actions:
        if action.user_id:
            before = by_id[action.user_id]
            assert before["source"] == "workday"  # others are never touched (no adopt, no priorities)
            assert action.state_before == before["state"]
        state = action.state_before or "staged"
        from provtui.domain.lifecycle import transition

        for step in action.lifecycle:
            state = transition(state, step).value
        assert state == action.state_after
        if action.line is None:
            assert full and action.lifecycle == ("deactivate",)
    summary = plan.summary()
    if plan.refused:  # a full run with no valid person changes nothing (issue #14); what it would do is withheld
        assert full and plan.people == 0 and plan.actions == () and "no valid person" in plan.refused
        assert not any(
            row[1] in ("Active", "On Leave", "Pre-Hire") and line not in {r["line"] for r in summary["rejected"]}
            for line, row in enumerate(rows, start=2)
        )
    else:
        assert not plan.withheld and not (full and plan.people == 0)
    decided = plan.withheld if plan.refused else plan.actions
    rows_accounted = summary["unchanged"] + len(summary["rejected"]) + sum(1 for a in decided if a.line is not None)
    assert rows_accounted == len(rows)


# -- speed -----------------------------------------------------------------------------------


def test_50k_rows_timing():
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "Employee ID",
            "Legal First Name",
            "Preferred Name",
            "Last Name",
            "Work Email",
            "Business Title",
            "Department",
            "Manager Email",
            "Work Location",
            "Cost Center",
            "Worker Status",
        ]
    )
    statuses = ["Active"] * 8 + ["On Leave", "Terminated"]
    for i in range(50_000):
        writer.writerow(
            [
                100_000 + i,
                f"First{i}",
                "",
                f"Last{i}",
                f"user{i}@example.com",
                f"Title {i % 50}",
                f"Dept {i % 20}",
                f"user{i // 10}@example.com",
                "Berlin",
                f"CC{i % 30}",
                statuses[i % 10],
            ]
        )
    data = buffer.getvalue().encode()
    started = time.perf_counter()
    parsed = parse_csv(data)
    parsed_at = time.perf_counter()
    plan = plan_import(parsed, {}, source="workday", full=True)
    planned_at = time.perf_counter()
    existing = {
        f"u{i}": {"id": f"u{i}", "login": a.login, "state": a.state_after, "source": "workday", "profile": a.profile}
        for i, a in enumerate(plan.actions)
    }
    changed = data.replace(b"Title 3,", b"Title 3b,").replace(b"Active\r\n", b"On Leave\r\n", 500)
    again_at = time.perf_counter()
    replan = plan_import(parse_csv(changed), existing, source="workday", full=True)
    done = time.perf_counter()
    assert plan.summary()["created"] == 45_000 and plan.summary()["unchanged"] == 5_000
    assert replan.summary()["updated"] == 1_000 and replan.summary()["suspended"] == 500
    print(
        f"\n50,000 rows ({len(data) / 1e6:.1f} MB): parse {parsed_at - started:.2f}s, plan (all new) {planned_at - parsed_at:.2f}s; "
        f"re-import against 45,000 users: parse+plan {done - again_at:.2f}s"
    )
