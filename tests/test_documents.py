"""Supporting documents (issue 5): upload one or more files to an account, tied to
one of its requests or to a form in progress; the type from the content (never
the name); refusals keep nothing; the two stores (database, filesystem) on both
databases; downloads as attachments; the upload is an idempotent request."""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select

from domain import documents, drafts, requests
from models import AuditEvent, Document, DocumentContent, Draft, Program, ServiceRequest
from tests.accounts_factory import body, give, open_account, sessionmaker_of, signed_in
from tests.conftest import START, csrf_from, make_user

OWNER, CLERK, STRANGER = "owner@example.com", "clerk@example.com", "stranger@example.com"


# --- Real files, built here ----------------------------------------------------------


def make_pdf(text: str = "Receipt for June 2026") -> bytes:
    """A one-page PDF, the same bytes every time: fpdf2 otherwise writes the real time
    into it, and two copies made a second apart are two different files."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_creation_date(START)
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(text=text)
    return bytes(pdf.output())


def make_image(fmt: str, size=(24, 16)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(out, format=fmt)
    return out.getvalue()


def _zip(parts: dict[str, bytes | str], compression=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return out.getvalue()


_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'officeDocument" Target="{target}"/></Relationships>'
)


def _content_types(overrides: dict[str, str]) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        + "".join(f'<Override PartName="{part}" ContentType="{kind}"/>' for part, kind in overrides.items())
        + "</Types>"
    )


def make_xlsx(sheet: str | None = None, extra: dict | None = None) -> bytes:
    sheet = sheet or (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        '<row r="1"><c r="A1" t="inlineStr"><is><t>Levy</t></is></c><c r="B1"><v>40</v></c></row>'
        "</sheetData></worksheet>"
    )
    return _zip(
        {
            "[Content_Types].xml": _content_types(
                {
                    "/xl/workbook.xml": documents.XLSX_MAIN,
                    "/xl/worksheets/sheet1.xml": (
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
                    ),
                }
            ),
            "_rels/.rels": _RELS.format(target="xl/workbook.xml"),
            "xl/workbook.xml": (
                '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
                'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
                '<sheets><sheet name="June" sheetId="1" r:id="rId1"/></sheets></workbook>'
            ),
            "xl/_rels/workbook.xml.rels": _RELS.format(target="worksheets/sheet1.xml").replace(
                'officeDocument" Target', 'worksheet" Target'
            ),
            "xl/worksheets/sheet1.xml": sheet,
            **(extra or {}),
        }
    )


def make_docx() -> bytes:
    return _zip(
        {
            "[Content_Types].xml": _content_types({"/word/document.xml": documents.DOCX_MAIN}),
            "_rels/.rels": _RELS.format(target="word/document.xml"),
            "word/document.xml": (
                '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
                "<w:body><w:p><w:r><w:t>Letter from our auditor</w:t></w:r></w:p></w:body>"
                "</w:document>"
            ),
        }
    )


CSV = "date,amount\n2026-06-30,40.00\nréception,12.50\n".encode()
PNG = make_image("PNG")
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200 + b"This program cannot be run"
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect/></svg>'

ACCEPTED = [
    ("receipt.pdf", make_pdf, "application/pdf"),
    ("photo.jpg", lambda: make_image("JPEG"), "image/jpeg"),
    ("scan.png", lambda: PNG, "image/png"),
    ("fax.tiff", lambda: make_image("TIFF"), "image/tiff"),
    ("levy.csv", lambda: CSV, "text/csv"),
    ("levy-bom.csv", lambda: b"\xef\xbb\xbf" + CSV, "text/csv"),
    ("working papers.xlsx", make_xlsx, documents.KINDS["xlsx"].content_type),
    ("letter.docx", make_docx, documents.KINDS["docx"].content_type),
]


# --- The account ----------------------------------------------------------------------


@pytest.fixture(params=["filesystem", "database"])
def store(request):
    return request.param


@pytest.fixture
def folder(tmp_path):
    return tmp_path / "documents"


@pytest.fixture
def make_app(app_with, folder):
    def factory(store="filesystem", **config):
        return app_with(DOCUMENT_STORE=store, DOCUMENT_DIR=str(folder), **config)

    return factory


@pytest.fixture
def web(make_app):
    """The app with the filesystem store (nothing left on disk is then checkable)."""
    return make_app("filesystem")


def shop_in(app, clock):
    """Olive owns Corner Shop (a TL account); Casey is a delegate who may upload;
    Sam is a stranger; Other Co. is someone else's account."""
    owner = make_user(app, email=OWNER, name="Olive Owner")
    clerk = make_user(app, email=CLERK, name="Casey Clerk")
    make_user(app, email=STRANGER, name="Sam Stranger")
    someone = make_user(app, email="someone@example.com", name="Some One")
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=61, legal_name="Corner Shop Ltd.", opened_on=date(2026, 3, 1))
        other = open_account(db, serial=62, legal_name="Other Co.", opened_on=date(2026, 3, 1))
        give(db, clock(), owner, account)
        give(db, clock(), clerk, account, role="delegate")
        give(db, clock(), someone, other)
        db.commit()
        return {
            "number": account.number,
            "account_id": account.id,
            "other": other.number,
            "other_id": other.id,
            "owner": owner,
            "clerk": clerk,
            "someone": someone,
        }


@pytest.fixture
def shop(web, clock):
    return shop_in(web, clock)


def _token(client, number, **query) -> tuple[str, str]:
    page = body(client.get(f"/documents/{number}/upload", query_string=query))
    return csrf_from(page), re.search(r'name="token" value="([^"]+)"', page).group(1)


def upload(client, number, files, *, token=None, csrf=None, query=None, headers=None, **fields):
    """POST the upload form as a browser does: multipart, CSRF token, one-time token."""
    fresh_csrf, fresh_token = _token(client, number, **(query or {}))
    data = {"csrf_token": csrf or fresh_csrf, "token": token or fresh_token, "description": "", **fields}
    data["files"] = [(io.BytesIO(content), name) for name, content in files]
    return client.post(
        f"/documents/{number}/upload", data=data, content_type="multipart/form-data", headers=headers or {}
    )


def counts(app) -> tuple[int, int, int]:
    with sessionmaker_of(app)() as db:
        return (
            db.scalar(select(func.count(Document.id))),
            db.scalar(select(func.count()).select_from(DocumentContent)),
            db.scalar(select(func.count(ServiceRequest.id)).where(ServiceRequest.kind == "documents")),
        )


def on_disk(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --- Each accepted type, in both stores, on both databases ----------------------------


def test_each_accepted_type_is_kept_with_its_sha256_and_downloads_as_an_attachment(make_app, clock, store, folder):
    app = make_app(store)
    shop = shop_in(app, clock)
    client = signed_in(app, OWNER)
    for name, build, content_type in ACCEPTED:
        content = build()
        response = upload(client, shop["number"], [(name, content)], description=f"The {name}")
        assert response.status_code == 303, (name, body(response))
        assert response.headers["Location"] == f"/documents/{shop['number']}/"
        with sessionmaker_of(app)() as db:
            document = db.scalar(select(Document).order_by(Document.id.desc()).limit(1))
            assert document.uploaded_name == name and document.content_type == content_type
            assert document.size_bytes == len(content) and document.storage == store
            assert document.sha256 == hashlib.sha256(content).hexdigest()
            assert re.fullmatch(r"[0-9a-f]{32}", document.stored_name)  # generated, never the uploaded name
            assert document.description == f"The {name}" and document.uploaded_by_user_id == shop["owner"]
            if store == "filesystem":
                kept = (folder / document.stored_name).read_bytes()
                assert db.get(DocumentContent, document.stored_name) is None
            else:
                kept = db.get(DocumentContent, document.stored_name).content
            assert hashlib.sha256(kept).hexdigest() == document.sha256
            document_id = document.id
        download = client.get(f"/documents/{shop['number']}/{document_id}/download")
        assert download.status_code == 200 and download.data == content
        assert download.mimetype == content_type
        assert download.headers["Content-Disposition"].startswith("attachment;")
        assert download.headers["X-Content-Type-Options"] == "nosniff"
        assert download.headers["Content-Security-Policy"] == "sandbox"
        assert download.headers["Cache-Control"] == "private, no-store"
    page = body(client.get(f"/documents/{shop['number']}/"))
    for name, _build, _type in ACCEPTED:
        assert name in page
    assert "Olive Owner" in page and "The receipt.pdf" in page and 'id="upload-form"' in page
    assert len(on_disk(folder)) == (len(ACCEPTED) if store == "filesystem" else 0)
    assert not [n for n in on_disk(folder) if n.endswith(".part")]


def test_the_default_store_follows_the_database(app_with, folder, clock, db_backend):
    app = app_with(DOCUMENT_DIR=str(folder))  # DOCUMENT_STORE left empty
    shop = shop_in(app, clock)
    assert upload(signed_in(app, OWNER), shop["number"], [("a.pdf", make_pdf())]).status_code == 303
    with sessionmaker_of(app)() as db:
        expected = "database" if db_backend == "postgresql" else "filesystem"
        assert db.scalar(select(Document.storage)) == expected
    assert documents.store_kind("", "postgresql://db/portal") == "database"
    assert documents.store_kind("", "sqlite:///portal.db") == "filesystem"
    assert documents.store_kind("filesystem", "postgresql://db/portal") == "filesystem"
    with pytest.raises(ValueError):
        documents.store_kind("s3", "sqlite:///x")
    with pytest.raises(ValueError, match="outside the static folder"):
        documents.make_store("filesystem", folder / "static" / "docs", static_dir=folder / "static")


def test_a_document_stays_readable_after_the_store_setting_changes(make_app, clock, folder):
    fs_app = make_app("filesystem")
    shop = shop_in(fs_app, clock)
    upload(signed_in(fs_app, OWNER), shop["number"], [("old.pdf", make_pdf())])
    db_app = make_app("database")
    client = signed_in(db_app, OWNER)
    upload(client, shop["number"], [("new.png", PNG)])
    with sessionmaker_of(db_app)() as db:
        rows = db.execute(select(Document.id, Document.storage).order_by(Document.id)).all()
    assert [storage for _id, storage in rows] == ["filesystem", "database"]
    for document_id, _storage in rows:
        assert client.get(f"/documents/{shop['number']}/{document_id}/download").status_code == 200


# --- Refusals: nothing kept ------------------------------------------------------------


def _bomb_by_ratio() -> bytes:
    return make_xlsx(sheet="<worksheet>" + " " * (20 * 1024 * 1024) + "</worksheet>")


def _bomb_by_count() -> bytes:
    return make_xlsx(extra={f"xl/media/pad{i}.xml": "" for i in range(documents.MAX_ZIP_ENTRIES)})


REFUSED = [
    ("empty.pdf", b"", "“empty.pdf” is empty"),
    ("setup.exe", EXE, "“setup.exe” must be a PDF, JPEG, PNG, TIFF, CSV, XLSX or DOCX file"),
    ("archive.zip", _zip({"a.txt": "hello"}), "“archive.zip” must be a PDF, JPEG, PNG, TIFF, CSV, XLSX or DOCX file"),
    ("page.html", HTML, "“page.html” must be a PDF, JPEG, PNG, TIFF, CSV, XLSX or DOCX file"),
    ("logo.svg", SVG, "“logo.svg” must be a PDF, JPEG, PNG, TIFF, CSV, XLSX or DOCX file"),
    ("invoice.pdf", HTML, "“invoice.pdf” is named as a PDF but it is a web page (HTML)"),
    ("invoice.pdf", EXE, "“invoice.pdf” is named as a PDF but it is a program"),
    ("scan.pdf", PNG, "“scan.pdf” is named as a PDF but it is a PNG image: rename it to end in .png"),
    (
        "letter.docx",
        _zip({"[Content_Types].xml": _content_types({}), "docProps/app.xml": "<x/>"}),
        "“letter.docx” is named as a Word document (DOCX) but it is a ZIP file",
    ),
    ("data.csv", SVG, "“data.csv” is named as a CSV file but it is an SVG image"),
    ("cut.pdf", make_pdf()[:-40], "“cut.pdf” looks incomplete"),
    ("broken.png", PNG[:40], "“broken.png” is damaged"),
    ("bomb.xlsx", _bomb_by_ratio(), "“bomb.xlsx” expands to too much data to check"),
    ("many.xlsx", _bomb_by_count(), "“many.xlsx” expands to too much data to check"),
    ("macros.xlsx", make_xlsx(extra={"xl/vbaProject.bin": b"\x00" * 64}), "“macros.xlsx” contains macros"),
    ("report.pdf.exe", make_pdf(), "“report.pdf.exe” is a PDF but its name ends in .exe"),
    ("excel.csv", "date,amount\n".encode("utf-16"), "“excel.csv” is not UTF-8 text. Save it as CSV UTF-8"),
]


def test_each_refused_file_gets_a_message_beside_the_field_and_nothing_is_kept(web, shop, folder):
    client = signed_in(web, OWNER)
    for name, content, message in REFUSED:
        response = upload(client, shop["number"], [(name, content)])
        assert response.status_code == 400, name
        page = body(response)
        assert message in page, (name, page[page.find("error-summary") :][:800])
        assert 'href="#files"' in page and 'id="files-error"' in page  # the summary and beside the field
        assert counts(web) == (0, 0, 0), name
        assert on_disk(folder) == [], name


def test_a_file_over_the_size_limit_is_refused(make_app, clock, folder):
    app = make_app("filesystem", UPLOAD_MAX_BYTES=2048)
    shop = shop_in(app, clock)
    big = make_pdf("x" * 10) + b"%" + b" " * 3000  # a comment line, then the trailer again
    big += b"\nstartxref\n0\n%%EOF\n"
    response = upload(signed_in(app, OWNER), shop["number"], [("big.pdf", big)])
    assert response.status_code == 400 and "“big.pdf” must be smaller than 2 KB" in body(response)
    assert counts(app) == (0, 0, 0) and on_disk(folder) == []


def test_several_files_are_all_checked_first_and_one_refused_keeps_none(web, shop, folder):
    client = signed_in(web, OWNER)
    response = upload(
        client, shop["number"], [("good.pdf", make_pdf()), ("bad.exe", EXE), ("fake.pdf", HTML), ("also-good.png", PNG)]
    )
    assert response.status_code == 400
    page = body(response)
    assert "None of your files were uploaded." in page and "<title>Error: Upload supporting documents" in page
    assert "“bad.exe” must be" in page and "“fake.pdf” is named as a PDF" in page
    assert "good.pdf”" not in page.replace("also-good.png", "")  # only the refused are named
    assert counts(web) == (0, 0, 0) and on_disk(folder) == []
    ok = upload(client, shop["number"], [("good.pdf", make_pdf()), ("also-good.png", PNG)])
    assert ok.status_code == 303
    assert counts(web) == (2, 0, 1) and len(on_disk(folder)) == 2
    notice = body(client.get(ok.headers["Location"]))
    assert "Uploaded “good.pdf” and “also-good.png”" in notice and "Your reference number is SR-" in notice


def test_no_file_too_many_files_and_a_long_description_are_refused(make_app, clock, folder):
    app = make_app("filesystem", MAX_FILES_PER_UPLOAD=2)
    shop = shop_in(app, clock)
    client = signed_in(app, OWNER)
    none = upload(client, shop["number"], [])
    assert none.status_code == 400 and "Select a file to upload" in body(none)
    three = upload(client, shop["number"], [(f"{i}.png", PNG) for i in range(3)])
    assert three.status_code == 400 and "Select up to 2 files at a time" in body(three)
    long = upload(client, shop["number"], [("a.png", PNG)], description="x" * 201)
    assert long.status_code == 400 and "Enter a description of 200 characters or fewer" in body(long)
    assert 'href="#description"' in body(long)
    assert counts(app) == (0, 0, 0) and on_disk(folder) == []


def test_a_body_larger_than_the_upload_limit_gets_a_clear_413_and_the_form(make_app, clock, folder):
    app = make_app("filesystem", UPLOAD_MAX_BYTES=1024, MAX_FILES_PER_UPLOAD=1)
    shop = shop_in(app, clock)
    client = signed_in(app, OWNER)
    response = upload(client, shop["number"], [("huge.pdf", b"%PDF-1.4\n" + b"0" * 200_000)])
    assert response.status_code == 413
    page = body(response)
    assert "too large to send" in page and "smaller than 1 KB" in page and 'id="upload-form"' in page
    assert counts(app) == (0, 0, 0) and on_disk(folder) == []
    # Within the limit the same route takes several files: the limit grows with MAX_FILES_PER_UPLOAD.
    from web.uploads import body_limit

    assert body_limit({"UPLOAD_MAX_BYTES": 10 * 2**20, "MAX_FILES_PER_UPLOAD": 5}, "MAX_FILES_PER_UPLOAD") > 50 * 2**20
    assert body_limit({"UPLOAD_MAX_BYTES": 10 * 2**20}, 1) < 11 * 2**20  # consents: still one file


def test_consents_still_take_one_file_only(app_with, clock):
    app = app_with(UPLOAD_MAX_BYTES=1024)
    from flask import request

    from web.uploads import apply_limit

    # Any number with a good check digit (the router refuses others before the limit matters).
    with app.test_request_context("/consents/1234567897/upload", method="POST"):
        apply_limit()
        assert request.endpoint == "consents.upload" and request.max_content_length == 1024 + 64 * 1024
    with app.test_request_context("/documents/1234567897/upload", method="POST"):
        apply_limit()
        assert request.endpoint == "documents.upload" and request.max_content_length >= 5 * 1024 + 64 * 1024


# --- Failures between writing and committing --------------------------------------------


def test_a_failed_commit_leaves_no_file_and_no_row(make_app, clock, folder, store):
    app = make_app(store)
    shop = shop_in(app, clock)
    client = signed_in(app, OWNER)
    csrf, token = _token(client, shop["number"])

    def refuse(session):
        if session.scalar(select(func.count(Document.id))):
            raise RuntimeError("the database went away at the commit")

    maker = app.extensions["portal.sessionmaker"]
    event.listen(maker, "before_commit", refuse)
    try:
        with pytest.raises(RuntimeError, match="went away"):
            client.post(
                f"/documents/{shop['number']}/upload",
                content_type="multipart/form-data",
                data={
                    "csrf_token": csrf,
                    "token": token,
                    "files": [(io.BytesIO(make_pdf()), "a.pdf"), (io.BytesIO(PNG), "b.png")],
                },
            )
    finally:
        event.remove(maker, "before_commit", refuse)
    assert counts(app) == (0, 0, 0)
    assert on_disk(folder) == []  # neither the files nor a temporary .part
    # The same form sent again works (the token was never used).
    assert upload(client, shop["number"], [("a.pdf", make_pdf())], token=token).status_code == 303


def test_the_filesystem_store_writes_atomically_and_removes_what_a_failure_left(tmp_path, app, db_backend):
    store = documents.FilesystemStore(tmp_path / "d")
    name = documents.new_stored_name()
    store.put(None, name, b"content")
    assert (tmp_path / "d" / name).read_bytes() == b"content" and on_disk(tmp_path / "d") == [name]
    with pytest.raises(TypeError):
        store.put(None, documents.new_stored_name(), "not bytes")  # fails mid-write
    assert on_disk(tmp_path / "d") == [name]  # no half-written file, no .part
    store.discard([name, "../../etc/passwd"])
    assert on_disk(tmp_path / "d") == []
    with pytest.raises(ValueError):
        store.put(None, "../escape", b"x")


# --- Downloads -----------------------------------------------------------------------------


def test_downloads_are_found_only_within_the_account_and_by_people_who_may_upload(web, shop, clock):
    owner = signed_in(web, OWNER)
    upload(owner, shop["number"], [("receipts «juin» 2026.pdf", make_pdf())])
    someone = signed_in(web, "someone@example.com")
    upload(someone, shop["other"], [("theirs.pdf", make_pdf())])
    with sessionmaker_of(web)() as db:
        mine = db.scalar(select(Document.id).where(Document.account_id == shop["account_id"]))
        theirs = db.scalar(select(Document.id).where(Document.account_id == shop["other_id"]))
    ok = owner.get(f"/documents/{shop['number']}/{mine}/download")
    assert ok.status_code == 200
    disposition = ok.headers["Content-Disposition"]
    assert (
        disposition.startswith("attachment;")
        and "filename*=UTF-8''receipts%20%C2%ABjuin%C2%BB%202026.pdf" in disposition
    )
    assert owner.get(f"/documents/{shop['number']}/{theirs}/download").status_code == 404  # another account's id
    assert owner.get(f"/documents/{shop['number']}/{2**40}/download").status_code == 404
    assert owner.get(f"/documents/{shop['number']}/0/download").status_code == 404
    for email in (STRANGER, "someone@example.com"):
        stranger = signed_in(web, email)
        assert stranger.get(f"/documents/{shop['number']}/{mine}/download").status_code == 404
        assert stranger.get(f"/documents/{shop['number']}/").status_code == 404
        response = stranger.get(f"/documents/{shop['number']}/upload")
        assert response.status_code == 404 and "Corner Shop" not in body(response)
    assert signed_in(web, CLERK).get(f"/documents/{shop['number']}/{mine}/download").status_code == 200


def test_a_changed_stored_file_is_not_served(web, shop, folder):
    owner = signed_in(web, OWNER)
    upload(owner, shop["number"], [("a.pdf", make_pdf())])
    with sessionmaker_of(web)() as db:
        document = db.scalar(select(Document))
    (folder / document.stored_name).write_bytes(b"%PDF-tampered")
    response = owner.get(f"/documents/{shop['number']}/{document.id}/download")
    assert response.status_code == 500 and b"tampered" not in response.data


def test_the_uploaded_name_is_cleaned_for_display_and_download(web, shop):
    owner = signed_in(web, OWNER)
    response = upload(owner, shop["number"], [("../../etc/\u202egnp.exe\x07 scan.pdf", make_pdf())])
    assert response.status_code == 303
    with sessionmaker_of(web)() as db:
        document = db.scalar(select(Document))
    assert document.uploaded_name == "gnp.exe scan.pdf"
    described = upload(owner, shop["number"], [("b.png", PNG)], description="June\x00 receipts\u202e\n  2026")
    assert described.status_code == 303  # PostgreSQL refuses NUL: it never gets there
    with sessionmaker_of(web)() as db:
        assert db.scalar(select(Document.description).where(Document.uploaded_name == "b.png")) == "June receipts 2026"
    no_extension = upload(owner, shop["number"], [("scan", PNG)])
    assert no_extension.status_code == 303
    with sessionmaker_of(web)() as db:
        assert db.scalar(select(Document.uploaded_name).order_by(Document.id.desc()).limit(1)) == "scan.png"
    assert (
        documents.clean_name("a" * 500 + ".pdf").endswith(".pdf")
        and len(documents.clean_name("a" * 500 + ".pdf")) == 200
    )


# --- Ties: a draft, a request -------------------------------------------------------------


def test_an_upload_for_a_draft_ties_the_documents_to_it_and_goes_back(web, shop, clock):
    with sessionmaker_of(web)() as db:
        draft = drafts.start(
            db, clock(), account_id=shop["account_id"], user_id=shop["owner"], kind="objection", subject="2026-06-30"
        )
        db.commit()
        token, draft_id = draft.token, draft.id
    owner = signed_in(web, OWNER)
    back = f"/objections/{shop['number']}/2026-06-30/documents"
    page = body(owner.get(f"/documents/{shop['number']}/upload", query_string={"draft": token, "next": back}))
    assert "These documents go with your notice of objection" in page and 'name="about"' not in page
    response = upload(
        owner,
        shop["number"],
        [("receipts.pdf", make_pdf())],
        query={"draft": token, "next": back},
        draft=token,
        next=back,
    )
    assert response.status_code == 303 and response.headers["Location"] == back
    again = upload(owner, shop["number"], [("receipts.pdf", make_pdf())], draft=token, next=back)  # a retry
    # The draft's token is the form's submission key, never an upload's one-time token.
    stolen = upload(owner, shop["number"], [("x.pdf", make_pdf())], token=token)
    assert stolen.status_code == 400 and "This form has expired" in body(stolen)
    assert again.status_code == 303
    with sessionmaker_of(web)() as db:
        attached = db.scalars(select(Document).where(Document.draft_id == draft_id)).all()
        assert [d.uploaded_name for d in attached] == ["receipts.pdf"] and attached[0].service_request_id is None
        assert db.scalar(select(func.count(ServiceRequest.id))) == 0  # a draft's upload is not a request
        # The draft is sent: its documents go with the request.
        sent = requests.submit(
            db,
            clock(),
            account=_account(db, shop),
            user_id=shop["owner"],
            kind="objection",
            key=token,
            summary="Objection",
            data={},
        )
        drafts.mark_submitted(db, db.get(Draft, draft_id), sent.request.id)
        db.commit()
        assert db.get(Document, attached[0].id).service_request_id == sent.request.id
    page = body(owner.get(f"/documents/{shop['number']}/"))
    assert "Notice of objection " + sent.request.reference in page
    # An upload for a draft already sent goes with the request it became.
    late = upload(owner, shop["number"], [("late.png", PNG)], query={"draft": token}, draft=token)
    assert late.status_code == 303
    with sessionmaker_of(web)() as db:
        document = db.scalar(select(Document).where(Document.uploaded_name == "late.png"))
        assert document.service_request_id == sent.request.id and document.draft_id is None
    # Someone else's draft token, or a made-up one: 404.
    clerk = signed_in(web, CLERK)
    assert clerk.get(f"/documents/{shop['number']}/upload", query_string={"draft": token}).status_code == 404
    assert owner.get(f"/documents/{shop['number']}/upload", query_string={"draft": "no-such"}).status_code == 404


def _account(db, shop):
    from models import Account

    return db.get(Account, shop["account_id"])


def test_an_upload_can_be_about_one_of_the_accounts_requests(web, shop, clock):
    with sessionmaker_of(web)() as db:
        account = _account(db, shop)
        objection = requests.submit(
            db,
            clock(),
            account=account,
            user_id=shop["owner"],
            kind="objection",
            key=requests.new_token(),
            summary="Objection to the notice of 15 July 2026",
            data={},
        ).request
        arrangement = requests.submit(
            db,
            clock(),
            account=account,
            user_id=shop["owner"],
            kind="arrangement",
            key=requests.new_token(),
            summary="Payment arrangement",
            data={},
        ).request
        db.commit()
        reference, arrangement_ref = objection.reference, arrangement.reference
    owner = signed_in(web, OWNER)
    page = body(owner.get(f"/documents/{shop['number']}/upload", query_string={"about": reference}))
    assert f'<option value="{reference}" selected>' in page and arrangement_ref not in page
    response = upload(
        owner,
        shop["number"],
        [("proof.pdf", make_pdf()), ("photo.png", PNG)],
        about=reference,
        description="Proof of the sales",
    )
    assert response.status_code == 303
    with sessionmaker_of(web)() as db:
        tied = db.scalars(select(Document).order_by(Document.id)).all()
        assert {d.service_request_id for d in tied} == {objection.id}
        made = db.scalar(select(ServiceRequest).where(ServiceRequest.kind == "documents"))
        assert made.summary == f"2 supporting documents for {reference}: proof.pdf, photo.png"
        data = requests.answers(made)
        assert data["about"] == reference and data["documents"] == [d.id for d in tied]
        assert data["description"] == "Proof of the sales" and [f["name"] for f in data["files"]] == [
            "proof.pdf",
            "photo.png",
        ]
        assert db.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.event == "document.uploaded")) == 2
    listed = body(owner.get(f"/documents/{shop['number']}/"))
    assert f"Notice of objection {reference}" in listed
    # Another account's request, or a payment arrangement: not a choice.
    for wrong in (arrangement_ref, "SR-NONE-NONE"):
        refused = upload(owner, shop["number"], [("a.pdf", make_pdf())], about=wrong)
        assert refused.status_code == 400 and "Choose a request from the list" in body(refused)


def test_a_retried_upload_is_kept_once_and_answers_the_same(web, shop, folder):
    owner = signed_in(web, OWNER)
    csrf, token = _token(owner, shop["number"])
    first = upload(owner, shop["number"], [("a.pdf", make_pdf())], token=token, csrf=csrf)
    first_notice = body(owner.get(first.headers["Location"]))
    second = upload(owner, shop["number"], [("a.pdf", make_pdf())], token=token, csrf=csrf)
    assert second.status_code == 303 and second.headers["Location"] == first.headers["Location"]
    second_notice = body(owner.get(second.headers["Location"]))
    reference = re.search(r"SR-[A-Z0-9]{4}-[A-Z0-9]{4}", first_notice).group(0)
    assert reference in second_notice
    assert counts(web) == (1, 0, 1) and len(on_disk(folder)) == 1


def test_with_htmx_the_answer_is_a_fragment_or_the_next_page(web, shop):
    owner = signed_in(web, OWNER)
    headers = {"HX-Request": "true"}
    refused = upload(owner, shop["number"], [("x.exe", EXE)], headers=headers)
    page = body(refused)
    assert refused.status_code == 400 and page.lstrip().startswith('<div id="upload-form"') and "<html" not in page
    summary = f"/accounts/{shop['number']}/"
    done = upload(owner, shop["number"], [("a.pdf", make_pdf())], headers=headers, next=summary)
    assert done.status_code == 200 and done.headers["HX-Push-Url"] == summary
    assert done.headers["HX-Retarget"] == "body" and "<main" in body(done)
    # A boosted link gets the whole page (every page loads the progress script).
    boosted = owner.get(f"/documents/{shop['number']}/", headers={**headers, "HX-Boosted": "true"})
    assert boosted.status_code == 200 and "Supporting documents" in body(boosted)


def test_next_is_only_a_path_on_this_site(web, shop):
    owner = signed_in(web, OWNER)
    for target, expected in (
        ("/accounts/", "/accounts/"),
        ("//evil.example/", None),
        ("https://evil.example/", None),
        ("/\\evil.example", None),
        ("javascript:alert(1)", None),
        ("/a b", None),
        ("/\t/evil.example", None),
        ("", None),
    ):
        response = upload(owner, shop["number"], [("a.png", PNG)], next=target)
        assert response.status_code == 303, target
        assert response.headers["Location"] == (expected or f"/documents/{shop['number']}/"), target
    assert documents.safe_next("/objections/1/x?step=2") == "/objections/1/x?step=2"


def test_a_program_without_uploads_says_so(web, shop):
    with sessionmaker_of(web)() as db:
        program = db.get(Program, "TL")
        program.functions = ",".join(f for f in program.functions.split(",") if f != "upload")
        db.commit()
    owner = signed_in(web, OWNER)
    posted = owner.post(
        f"/documents/{shop['number']}/upload",
        content_type="multipart/form-data",
        data={
            "csrf_token": csrf_from(body(owner.get("/profile/"))),
            "token": requests.new_token(),
            "files": [(io.BytesIO(PNG), "a.png")],
        },
    )
    for response in (
        owner.get(f"/documents/{shop['number']}/"),
        owner.get(f"/documents/{shop['number']}/upload"),
        posted,
    ):
        assert response.status_code == 200 and "You cannot upload documents online" in body(response)
    assert counts(web) == (0, 0, 0)


def test_get_changes_nothing_and_post_needs_csrf(web, shop, folder):
    owner = signed_in(web, OWNER)
    owner.get(f"/documents/{shop['number']}/")
    owner.get(f"/documents/{shop['number']}/upload")
    assert counts(web) == (0, 0, 0)
    response = owner.post(
        f"/documents/{shop['number']}/upload",
        content_type="multipart/form-data",
        data={"token": requests.new_token(), "files": [(io.BytesIO(make_pdf()), "a.pdf")]},
    )
    assert response.status_code == 400
    assert counts(web) == (0, 0, 0) and on_disk(folder) == []


# --- Whatever arrives ------------------------------------------------------------------------

_names = st.text(max_size=300) | st.sampled_from(["a.pdf", "b.csv", "c.png", "d.docx", ".pdf", "x.exe", ""])
_bytes = st.binary(max_size=2048) | st.sampled_from([PNG, HTML, EXE, CSV, b"", make_pdf()])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    files=st.lists(st.tuples(_names, _bytes), max_size=3),
    description=st.text(max_size=300),
    about=st.text(max_size=30),
    token=st.one_of(st.none(), st.text(max_size=80)),
    next_url=st.text(max_size=60),
    draft=st.one_of(st.just(""), st.text(max_size=50)),
)
def test_arbitrary_uploads_never_fail_and_a_refusal_keeps_nothing(
    web, shop, folder, files, description, about, token, next_url, draft
):
    client = signed_in(web, OWNER)
    before, disk = counts(web), on_disk(folder)
    csrf, fresh = _token(client, shop["number"])
    data = {
        "csrf_token": csrf,
        "token": fresh if token is None else token,
        "description": description,
        "about": about,
        "next": next_url,
        "draft": draft,
        "files": [(io.BytesIO(content), name) for name, content in files],
    }
    response = client.post(f"/documents/{shop['number']}/upload", data=data, content_type="multipart/form-data")
    assert response.status_code < 500
    if response.status_code != 303:
        assert counts(web) == before and on_disk(folder) == disk


def test_purge_removes_the_documents_of_a_form_abandoned_for_90_days(make_app, clock, store, folder):
    from datetime import timedelta

    from domain import drafts
    from models import Draft

    app = make_app(store)
    shop = shop_in(app, clock)
    with sessionmaker_of(app)() as db:
        kept = drafts.start(db, clock(), account_id=shop["account_id"], user_id=shop["owner"], kind="objection")
        gone = drafts.start(db, clock(), account_id=shop["account_id"], user_id=shop["owner"], kind="waiver")
        db.commit()
        tokens = {"kept": kept.token, "gone": gone.token}
    owner = signed_in(app, OWNER)
    for name, token in tokens.items():
        assert upload(owner, shop["number"], [(f"{name}.png", PNG)], draft=token).status_code == 303
    with sessionmaker_of(app)() as db:
        abandoned = db.scalar(select(Draft).where(Draft.token == tokens["gone"]))
        abandoned.updated_at = clock() - timedelta(days=91)
        db.commit()
    assert app.test_cli_runner().invoke(args=["purge"]).exit_code == 0
    with sessionmaker_of(app)() as db:
        names = list(db.scalars(select(Document.uploaded_name)))
        assert names == ["kept.png"]
        assert db.scalar(select(func.count()).select_from(DocumentContent)) == (1 if store == "database" else 0)
    assert len(on_disk(folder)) == (1 if store == "filesystem" else 0)
