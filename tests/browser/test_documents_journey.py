"""Supporting documents in a real browser. With JavaScript: from the account's
services the owner opens "Upload supporting documents" (a boosted link, so the
page is loaded whole for its script), picks a PDF, and watches the progress bar
reach 100% and say "Upload complete"; the file is then listed and downloads as an
attachment. A disguised file comes back with the error summary, focused, and the
bar put away. With JavaScript off the same plain form uploads too. axe on the
page with its list, and with errors."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from models import Document
from tests.browser.conftest import sign_in
from tests.browser.test_access_journey import OWNER, heading, olive_owns_prairie_inn
from tests.test_documents import HTML, make_pdf

pytestmark = pytest.mark.browser


@pytest.fixture
def number(live_server, tmp_path):
    live_server.app.config.update(DOCUMENT_STORE="filesystem", DOCUMENT_DIR=str(tmp_path / "documents"))
    return olive_owns_prairie_inn(live_server, {})[0]


def _pdf_of_about(size: int) -> bytes:
    """A real PDF padded with a comment, big enough for several progress events."""
    pdf = make_pdf("Receipts for June 2026")
    return pdf + b"%" + b"x" * size + b"\nstartxref\n0\n%%EOF\n"


def _documents_in(live_server) -> int:
    with live_server.app.extensions["portal.sessionmaker"]() as db:
        return db.scalar(select(func.count(Document.id)))


def test_with_javascript_the_upload_shows_its_progress_and_the_file_is_listed(browser, live_server, number):
    page = browser.page()
    sign_in(page, OWNER, expect_heading="Welcome, Olive Owner")
    page.goto(f"/accounts/{number}/")
    page.get_by_role("link", name="Upload supporting documents").click()
    expect(page).to_have_url(re.compile(rf"/documents/{number}/$"))
    expect(heading(page)).to_have_text("Supporting documents")
    expect(page.locator("main")).to_contain_text("No documents have been uploaded to this account yet.")
    progress = page.locator("#upload-progress")
    expect(progress).to_be_hidden()

    # A web page named .pdf: refused, the error summary focused, nothing kept.
    files = page.get_by_label("Files to upload")
    files.set_input_files(files=[{"name": "invoice.pdf", "mimeType": "application/pdf", "buffer": HTML}])
    with page.expect_response(lambda r: r.request.method == "POST" and "/upload" in r.url) as answer:
        page.get_by_role("button", name="Upload", exact=True).click()
    assert answer.value.status == 400
    errors = page.locator(".error-summary")
    expect(errors).to_be_focused()
    expect(errors).to_contain_text("“invoice.pdf” is named as a PDF but it is a web page (HTML)")
    expect(page.locator("#files-error")).to_contain_text("“invoice.pdf” is named as a PDF")
    expect(progress).to_be_hidden()
    browser.check(page, "documents-errors")
    assert _documents_in(live_server) == 0

    # A real PDF of about 3 MB: the bar goes to 100% and says so, then the list has it.
    content = _pdf_of_about(3 * 1024 * 1024)
    page.get_by_label("Files to upload").set_input_files(
        files=[{"name": "receipts June.pdf", "mimeType": "application/pdf", "buffer": content}]
    )
    page.get_by_label("Description (optional)").fill("Receipts for June 2026")
    # What htmx reports and what the status line says, as it happens.
    page.evaluate("""() => {
        window.seen = {progress: [], said: []};
        document.addEventListener("htmx:xhr:progress", e => window.seen.progress.push([e.detail.loaded, e.detail.total]));
        new MutationObserver(() => window.seen.said.push(document.getElementById("upload-progress-status").textContent))
            .observe(document.getElementById("upload-progress-status"), {childList: true, characterData: true, subtree: true});
    }""")
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator(".notice")).to_contain_text("Uploaded “receipts June.pdf”")
    expect(progress).to_be_visible()
    expect(page.get_by_label("Upload progress")).to_have_attribute("value", "100")
    expect(progress.get_by_role("status")).to_have_text("Upload complete")
    expect(progress.locator(".upload-progress__percent")).to_have_text("100%")
    seen = page.evaluate("() => window.seen")
    assert any(total >= len(content) and loaded == total for loaded, total in seen["progress"]), seen["progress"]
    assert seen["said"][0] == "Uploading 0%" and "Upload complete" in seen["said"], seen["said"]
    table = page.locator("table#documents")
    row = table.locator("tbody tr", has_text="receipts June.pdf")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Receipts for June 2026")
    expect(row).to_contain_text("PDF")
    expect(row).to_contain_text("Olive Owner")
    browser.check(page, "documents-listed")
    assert _documents_in(live_server) == 1

    with page.expect_download() as download:
        row.get_by_role("link", name="receipts June.pdf").click()
    assert download.value.suggested_filename == "receipts June.pdf"
    with open(download.value.path(), "rb") as saved:
        assert saved.read() == content

    # Coming back later, the bar is put away.
    page.get_by_role("link", name="Back to the account").click()
    expect(heading(page)).to_have_text("Prairie Inn Ltd.")
    page.get_by_role("link", name="Upload supporting documents").click()
    expect(heading(page)).to_have_text("Supporting documents")
    expect(page.locator("#upload-progress")).to_be_hidden()


def test_without_javascript_the_plain_form_uploads(browser, live_server, number):
    page = browser.page(javascript=False)
    sign_in(page, OWNER, expect_heading=None)
    page.goto(f"/documents/{number}/upload")
    expect(heading(page)).to_have_text("Upload supporting documents")
    expect(page.locator("#upload-progress")).to_be_hidden()
    page.get_by_label("Files to upload").set_input_files(
        files=[
            {"name": "receipts.pdf", "mimeType": "application/pdf", "buffer": make_pdf()},
            {"name": "setup.exe", "mimeType": "application/octet-stream", "buffer": b"MZ" + b"\x00" * 300},
        ]
    )
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator(".error-summary")).to_contain_text("“setup.exe” must be a PDF")
    expect(page.locator("#files-error")).to_contain_text("None of your files were uploaded.")
    assert _documents_in(live_server) == 0
    page.get_by_label("Files to upload").set_input_files(
        files=[{"name": "receipts.pdf", "mimeType": "application/pdf", "buffer": make_pdf()}]
    )
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/documents/{number}/$"))
    expect(page.locator(".notice")).to_contain_text("Uploaded “receipts.pdf”")
    expect(page.locator("table#documents tbody tr")).to_have_count(1)
    expect(page.locator("table#documents")).to_contain_text("receipts.pdf")
    assert _documents_in(live_server) == 1
