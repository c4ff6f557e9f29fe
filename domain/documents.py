"""Supporting documents: files a person uploads to an account, optionally tied to
one of its requests (a return, an objection, a waiver request) or to a form in
progress (a draft, whose documents go with it when it is sent). Plain
functions, no Flask.

What a file is comes from its CONTENT, never its name: a PDF's header and
trailer, an image Pillow opens and verifies, an Excel or Word file's zip parts,
CSV as UTF-8 text. The name must agree with the content (a web page or a PNG
named .pdf is refused) and is kept only to show and to name the download. A
file that is also something else is refused (a polyglot: markup where a browser
sniffs, a PDF header after other bytes, a zip appended to a PDF or an image),
and so is a zip whose parts would expand too far, climb out of a folder (../,
absolute, links) or hold another archive. Malware scanning (domain.scanning)
comes after these checks, and a per-account quota (enforce_quota) is checked in
the transaction that keeps the files. Each file is stored under a generated
name, with its SHA-256, in one of two stores:

- "database": DocumentContent rows, in the same transaction as the Document
  (several servers sharing PostgreSQL, no shared disk);
- "filesystem": one file per document in a directory outside the static
  folder, written atomically (a temporary file in the same directory, fsync,
  os.replace); a failed commit removes what was written (one server).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
import unicodedata
import warnings
import zipfile
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from domain import audit, requests
from domain.files import write_atomically
from models import Account, Document, DocumentContent, Draft, ServiceRequest, User

# --- What we accept ------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    key: str
    content_type: str
    extensions: tuple[str, ...]  # the first is the one added to a name that has none
    label: str  # "a PDF", as in "it is a PDF"
    short: str  # "PDF", for lists and the type column


KINDS = {
    kind.key: kind
    for kind in (
        Kind("pdf", "application/pdf", (".pdf",), "a PDF", "PDF"),
        Kind("jpeg", "image/jpeg", (".jpg", ".jpeg", ".jpe"), "a JPEG image", "JPEG"),
        Kind("png", "image/png", (".png",), "a PNG image", "PNG"),
        Kind("tiff", "image/tiff", (".tif", ".tiff"), "a TIFF image", "TIFF"),
        Kind("csv", "text/csv", (".csv",), "a CSV file", "CSV"),
        Kind(
            "xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            (".xlsx",),
            "an Excel workbook (XLSX)",
            "XLSX",
        ),
        Kind(
            "docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            (".docx",),
            "a Word document (DOCX)",
            "DOCX",
        ),
    )
}
ACCEPTED_LIST = "PDF, JPEG, PNG, TIFF, CSV, XLSX or DOCX"
ACCEPT_ATTRIBUTE = ",".join(
    [k.content_type for k in KINDS.values()] + [e for k in KINDS.values() for e in k.extensions]
)
_BY_EXTENSION = {extension: kind.key for kind in KINDS.values() for extension in kind.extensions}
# What a refused file turned out to be, for the message.
_REFUSED_LABELS = {
    "exe": "a program",
    "html": "a web page (HTML)",
    "svg": "an SVG image",
    "xml": "an XML file",
    "zip": "a ZIP file",
    "gif": "a GIF image",
    "bmp": "a BMP image",
    "webp": "a WebP image",
    "ole": "an older Office file (.doc or .xls)",
    "archive": "a compressed archive",
    "image": "an image we do not accept",
    "binary": "a type we do not accept",
}

# Zip files (XLSX, DOCX) are checked without trusting them: at most this many
# parts, this much in all once expanded, and no part expanding more than this.
# A ratio is only judged on parts expanding past 1 MB: small XML parts compress
# far better than 100:1 and harm nothing. 100 MB leaves room for a real 10 MB
# workbook (sheet XML compresses about 10:1) and refuses every bomb we know.
MAX_ZIP_ENTRIES = 1000
MAX_ZIP_EXPANDED_BYTES = 100 * 1024 * 1024
MAX_ZIP_RATIO = 100
_RATIO_FROM_BYTES = 1024 * 1024
# A part that is itself an archive (a zip inside the workbook, a gzip...): its
# expanded size is not what the outer zip declares, so it is refused.
_ARCHIVE_MAGIC = (
    b"PK\x03\x04",
    b"PK\x05\x06",
    b"PK\x07\x08",
    b"\x1f\x8b",
    b"7z\xbc\xaf\x27\x1c",
    b"Rar!",
    b"BZh",
    b"\xfd7zXZ",
    b"\x28\xb5\x2f\xfd",
    b"MSCF",
)
_ARCHIVE_NAMES = (
    ".zip",
    ".xlsx",
    ".xlsm",
    ".docx",
    ".docm",
    ".pptx",
    ".jar",
    ".gz",
    ".tgz",
    ".7z",
    ".rar",
    ".bz2",
    ".xz",
    ".zst",
    ".cab",
    ".tar",
)
# What a browser reads to guess a type (WHATWG MIME Sniffing: the resource
# header is at most 1445 bytes). Markup there, in a file of any binary kind,
# makes it a polyglot: a PDF or an image that is also a web page or a script.
# Only tags of four letters or more: by chance in compressed bytes, about one
# file in a million; "<a " would be one JPEG in a thousand.
SNIFF_WINDOW = 1445
_MARKUP_IN_HEADER = re.compile(
    rb"<(?:!doctype\s+html|html|head|body|script|iframe|frame|frameset|object|embed|svg|meta|link|style|form|"
    rb"img\s|base|applet|\?xml-stylesheet)\b|javascript:|vbscript:",
    re.IGNORECASE,
)
# The PDF header may stand anywhere in the first 1024 bytes (readers follow
# Acrobat there); only white space may come before it.
PDF_HEADER_WINDOW = 1024
_MAX_CONTENT_TYPES_BYTES = 1024 * 1024
# Images: at most this many pixels (Pillow's own bomb check is far larger).
MAX_IMAGE_PIXELS = 60_000_000

XLSX_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
DOCX_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
_MACRO_TYPES = (
    "application/vnd.ms-excel.sheet.macroenabled.main+xml",
    "application/vnd.ms-word.document.macroenabled.main+xml",
    "application/vnd.ms-office.vbaproject",
)

# Kinds a document can be tied to in "What is it about?".
ABOUT_KINDS = ("return", "claim", "amended_return", "amended_claim", "objection", "waiver")
MAX_DESCRIPTION = 200
MAX_NAME = 200
STORES = ("database", "filesystem")


# --- Names ---------------------------------------------------------------------------


def extension_of(name: str) -> str:
    """ ".pdf" for "Scan.PDF"; "" when the name has none."""
    base = name.rsplit("/", 1)[-1]
    if "." not in base.strip("."):
        return ""
    return "." + base.rsplit(".", 1)[-1].lower()


def clean_name(uploaded: str | None) -> str:
    """The uploaded name fit to show and to name a download: no folders, no control
    or formatting characters (a right-to-left override hides a real extension),
    at most 200 characters with its extension kept. "" when nothing is left."""
    text = unicodedata.normalize("NFC", uploaded or "")
    text = re.split(r"[/\\]", text)[-1]
    text = "".join(
        ch if not unicodedata.category(ch).startswith("Z") else " "
        for ch in text
        if not unicodedata.category(ch).startswith("C")
    )
    text = " ".join(text.split()).strip(". ")
    if len(text) > MAX_NAME:
        extension = extension_of(text)
        extension = extension if len(extension) <= 10 else ""
        text = text[: MAX_NAME - len(extension)].rstrip(". ") + extension
    return text


def clean_text(text: str | None) -> str:
    """One line of text to keep: no control or formatting characters (PostgreSQL
    refuses NUL), spaces collapsed."""
    text = unicodedata.normalize("NFC", text or "")
    return " ".join(
        "".join(
            " " if unicodedata.category(ch).startswith(("Z", "Cc")) else ch
            for ch in text
            if not unicodedata.category(ch).startswith(("Cf", "Cs", "Co", "Cn"))
        ).split()
    )


# --- The content -------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """What the bytes are: an accepted kind ("pdf") or what was refused ("html"),
    and, when the kind is right but the file is not fit to keep, why."""

    family: str
    problem: str | None = None  # "incomplete", "damaged", "bomb", "macros", "too_many_pixels", "encrypted",
    # "polyglot" (also another kind of file), "unsafe_parts" (../, absolute, link...), "nested" (an archive inside)


_HTML_START = re.compile(
    rb"^\s*<(!doctype\s+html|html|head|body|script|iframe|meta|a\s|div|p\W|title|style|!--)", re.IGNORECASE
)


def inspect(content: bytes) -> Found:
    """What the bytes are, and whether they are also something else (a polyglot)."""
    found = _inspect(content)
    if found.family in KINDS and found.family != "csv" and found.problem is None:
        if _MARKUP_IN_HEADER.search(content[:SNIFF_WINDOW]) or (
            found.family != "pdf" and b"%PDF-" in content[:PDF_HEADER_WINDOW]
        ):
            return Found(found.family, "polyglot")
        if found.family not in ("xlsx", "docx") and appended_zip(content):
            return Found(found.family, "polyglot")
    return found


def appended_zip(content: bytes) -> bool:
    """A zip a zip tool would open at the end of the bytes: its end-of-central-directory
    record in the last 64 KB (where tools look), pointing at a real central
    directory. Both signatures by chance are not a worry (1 in 2**64)."""
    window_start = max(0, len(content) - (22 + 65535))
    at = len(content)
    while True:
        at = content.rfind(b"PK\x05\x06", window_start, at)
        if at < 0:
            return False
        record = content[at : at + 22]
        if len(record) == 22:
            cd_size, cd_offset = int.from_bytes(record[12:16], "little"), int.from_bytes(record[16:20], "little")
            for start in (cd_offset, at - cd_size):
                if 0 <= start < at and content[start : start + 4] == b"PK\x01\x02":
                    return True
            if content[max(0, at - 20) : at - 16] == b"PK\x06\x07":  # zip64: its own locator
                return True


def _inspect(content: bytes) -> Found:
    head = content[:16]
    header_at = content[:PDF_HEADER_WINDOW].find(b"%PDF-")
    if header_at == 0:
        return _pdf(content)
    if header_at > 0:
        if not content[:header_at].removeprefix(b"\xef\xbb\xbf").strip(b" \t\r\n\f\x00"):
            return _pdf(content)
        # Something else first (a web page, an image, a script) and a PDF reader
        # would still open it as a PDF: two files in one.
        return Found("pdf", "polyglot")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return _image(content, "png")
    if head.startswith(b"\xff\xd8\xff"):
        return _image(content, "jpeg")
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return _image(content, "tiff")
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _office(content)
    if head.startswith(b"MZ") and b"\x00" in content[:4096]:
        return Found("exe")
    if head.startswith((b"\x7fELF", b"\xca\xfe\xba\xbe", b"\xcf\xfa\xed\xfe", b"\xfe\xed\xfa")):
        return Found("exe")
    if head.startswith((b"GIF87a", b"GIF89a")):
        return Found("gif")
    if head.startswith(b"RIFF") and content[8:12] == b"WEBP":
        return Found("webp")
    if head.startswith(b"BM") and b"\x00" in content[:64]:
        return Found("bmp")
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return Found("ole")
    if head.startswith((b"\x1f\x8b", b"7z\xbc\xaf\x27\x1c", b"Rar!", b"BZh", b"\xfd7zXZ")):
        return Found("archive")
    return _text(content)


def _pdf(content: bytes) -> Found:
    tail = content[-2048:]
    if b"%%EOF" not in content[-1024:] or b"startxref" not in tail:
        return Found("pdf", "incomplete")
    return Found("pdf")


def _image(content: bytes, expected: str) -> Found:
    from PIL import Image

    pillow_format = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF"}[expected]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(content), formats=[pillow_format]) as image:
                width, height = image.size
                if width * height > MAX_IMAGE_PIXELS:
                    return Found(expected, "too_many_pixels")
                image.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return Found(expected, "too_many_pixels")
    except Exception:  # Pillow raises many kinds for bytes that are not a sound image
        return Found(expected, "damaged")
    return Found(expected)


def _office(content: bytes) -> Found:
    """An XLSX or DOCX is a zip with [Content_Types].xml naming its main part, and
    that part under xl/ or word/. Checked from the declared sizes before anything
    is expanded, then every part read to its end (at most the declared sizes, each
    checked against its CRC)."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            entries = archive.infolist()
            if len(entries) > MAX_ZIP_ENTRIES:
                return Found("zip", "bomb")
            expanded = 0
            for entry in entries:
                expanded += entry.file_size
                if entry.file_size > _RATIO_FROM_BYTES and entry.file_size > MAX_ZIP_RATIO * max(
                    entry.compress_size, 1
                ):
                    return Found("zip", "bomb")
            if expanded > MAX_ZIP_EXPANDED_BYTES:
                return Found("zip", "bomb")
            if any(entry.flag_bits & 0x1 for entry in entries):
                return Found("zip", "encrypted")
            if any(unsafe_part(entry) for entry in entries) or len({e.filename for e in entries}) != len(entries):
                return Found("zip", "unsafe_parts")
            if any(entry.filename.lower().endswith(_ARCHIVE_NAMES) for entry in entries):
                return Found("zip", "nested")
            names = {entry.filename for entry in entries}
            family = _office_family(archive, names)
            if family == "zip":
                return Found("zip")
            for entry in entries:
                with archive.open(entry) as part:
                    first = part.read(1024 * 1024)
                    if first.startswith(_ARCHIVE_MAGIC):
                        return Found(family.split("+")[0], "nested")
                    while first:
                        first = part.read(1024 * 1024)
            if family.endswith("+macros"):
                return Found(family.split("+")[0], "macros")
            return Found(family)
    except Exception:  # a bad CRC, a truncated part, an unknown compression method...
        return Found("zip", "damaged")


_DRIVE = re.compile(r"^[A-Za-z]:")


def unsafe_part(entry: zipfile.ZipInfo) -> bool:
    """A part whose name climbs out (../), starts at a root (/, \\, C:), carries a
    NUL, a backslash or a control character, or that is a symbolic link or a
    folder of its own: never in a real XLSX or DOCX, always in a zip-slip attack."""
    raw = entry.orig_filename
    name = entry.filename
    if not name or "\x00" in raw or "\\" in raw or name.startswith("/") or _DRIVE.match(name):
        return True
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in raw):
        return True
    if any(piece in ("..", ".") for piece in name.split("/")):
        return True
    mode = entry.external_attr >> 16
    return (mode & 0o170000) == 0o120000  # a symbolic link (Unix zips keep the mode there)


def _office_family(archive: zipfile.ZipFile, names: set[str]) -> str:
    if "[Content_Types].xml" not in names:
        return "zip"
    info = archive.getinfo("[Content_Types].xml")
    if info.file_size > _MAX_CONTENT_TYPES_BYTES:
        return "zip"
    raw = archive.read(info)
    text = None
    for encoding in ("utf-8-sig", "utf-16"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeError:
            continue
    if text is None or "<!DOCTYPE" in text.upper() or "<!ENTITY" in text.upper():
        return "zip"
    overrides = {}
    for tag in re.findall(r"<(?:\w+:)?Override\b[^>]*>", text):
        part = re.search(r"""PartName\s*=\s*["']([^"']+)["']""", tag)
        kind = re.search(r"""ContentType\s*=\s*["']([^"']+)["']""", tag)
        if part and kind:
            overrides[part.group(1).lstrip("/")] = kind.group(1).strip().lower()
    types = set(overrides.values()) | {m.lower() for m in re.findall(r"""ContentType\s*=\s*["']([^"']+)["']""", text)}
    macros = any(t in types for t in _MACRO_TYPES) or any(n.lower().endswith("vbaproject.bin") for n in names)
    for family, main, folder, macro_main in (
        ("xlsx", XLSX_MAIN, "xl/", _MACRO_TYPES[0]),
        ("docx", DOCX_MAIN, "word/", _MACRO_TYPES[1]),
    ):
        parts = [p for p, t in overrides.items() if t in (main, macro_main) and p.startswith(folder)]
        if any(p in names for p in parts):
            return family + ("+macros" if macros else "")
    return "zip"


def _text(content: bytes) -> Found:
    if b"\x00" in content:
        return Found("binary")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return Found("binary")
    start = text.lstrip()[:2048].lower()
    if start.startswith("<"):
        if "<svg" in start:
            return Found("svg")
        if _HTML_START.match(start.encode()) or "<html" in start or "<script" in start:
            return Found("html")
        return Found("xml")
    return Found("csv")


# --- One file: accepted, or why not ------------------------------------------------


@dataclass(frozen=True)
class Checked:
    """A file fit to keep: its shown name (with the right extension), its bytes and kind."""

    name: str
    content: bytes
    kind: str
    sha256: str

    @property
    def content_type(self) -> str:
        return KINDS[self.kind].content_type


class Refusal(str):
    """The message for a refused file (a plain str to show), with why in a word
    for the audit log: "empty", "too_large", "type", "mismatch", "polyglot",
    "bomb", "unsafe_parts", "nested", "malware"..."""

    reason: str

    def __new__(cls, message: str, reason: str):
        refusal = super().__new__(cls, message)
        refusal.reason = reason
        return refusal


def size_text(max_bytes: int) -> str:
    if max_bytes >= 1024 * 1024:
        return f"{max_bytes / (1024 * 1024):g} MB"
    return f"{max(max_bytes // 1024, 1)} KB"


def check(uploaded_name: str | None, content: bytes, max_bytes: int) -> Checked | Refusal:
    """The file, checked; or the message that says what is wrong with it."""
    name = clean_name(uploaded_name)
    called = f"“{name}”" if name else "The selected file"
    if not content:
        return Refusal(f"{called} is empty", "empty")
    if len(content) > max_bytes:
        return Refusal(f"{called} must be smaller than {size_text(max_bytes)}", "too_large")
    found = inspect(content)
    extension = extension_of(name)
    named_as = _BY_EXTENSION.get(extension)
    if found.problem == "polyglot":
        return Refusal(
            f"{called} has another file or a web page hidden in it: we cannot accept it. Save it again "
            "from the program that made it, or print it to a new PDF, and upload that",
            "polyglot",
        )
    if found.problem in ("unsafe_parts", "nested") and (
        found.family in ("xlsx", "docx") or named_as in ("xlsx", "docx")
    ):
        if found.problem == "nested":
            return Refusal(
                f"{called} has another compressed file inside it: we cannot accept it. Save it again "
                "without embedded files and upload it",
                "nested",
            )
        return Refusal(
            f"{called} is damaged or unsafe: its parts have names no Excel or Word file has. Save it "
            "again and upload it",
            "unsafe_parts",
        )
    if found.family == "zip" and found.problem and named_as in ("xlsx", "docx"):
        pass  # an Excel or Word file could not be checked: say why below
    elif found.family == "csv":
        if named_as not in (None, "csv"):
            return Refusal(
                f"{called} is named as {KINDS[named_as].label} but it is text: upload the real file", "mismatch"
            )
        if named_as != "csv":
            return Refusal(f"{called} must be a {ACCEPTED_LIST} file", "type")
    elif found.family in KINDS:
        if named_as is not None and named_as != found.family:
            right = KINDS[found.family].extensions[0]
            return Refusal(
                f"{called} is named as {KINDS[named_as].label} but it is {KINDS[found.family].label}: "
                f"rename it to end in {right}, or upload the real file",
                "mismatch",
            )
        if named_as is None and extension:
            right = KINDS[found.family].extensions[0]
            return Refusal(
                f"{called} is {KINDS[found.family].label} but its name ends in {extension}: "
                f"rename it to end in {right}",
                "mismatch",
            )
    elif named_as == "csv" and found.family == "binary":
        return Refusal(f"{called} is not UTF-8 text. Save it as CSV UTF-8 and upload it", "type")
    else:
        what = _REFUSED_LABELS.get(found.family, _REFUSED_LABELS["binary"])
        if named_as is not None:
            return Refusal(
                f"{called} is named as {KINDS[named_as].label} but it is {what}: we cannot accept it", "mismatch"
            )
        return Refusal(f"{called} must be a {ACCEPTED_LIST} file", "type")
    if found.problem == "incomplete":
        return Refusal(f"{called} looks incomplete. Save the PDF again and upload it", "incomplete")
    if found.problem == "damaged":
        return Refusal(f"{called} is damaged and cannot be opened. Save it again and upload it", "damaged")
    if found.problem == "too_many_pixels":
        return Refusal(f"{called} has too many pixels. Save it at a lower resolution and upload it", "too_many_pixels")
    if found.problem == "bomb":
        return Refusal(
            f"{called} expands to too much data to check. Save it again without embedded files, or split it", "bomb"
        )
    if found.problem == "encrypted":
        return Refusal(
            f"{called} is protected with a password. Save it without the password and upload it", "encrypted"
        )
    if found.problem == "macros":
        return Refusal(f"{called} contains macros. Save it as a file without macros and upload it", "macros")
    kind = KINDS[found.family]
    if not name:
        name = "document" + kind.extensions[0]
    elif not extension:
        name = clean_name(name + kind.extensions[0])
        if extension_of(name) != kind.extensions[0]:  # the name was cut to make room
            name = name[: MAX_NAME - len(kind.extensions[0])] + kind.extensions[0]
    return Checked(name=name, content=content, kind=kind.key, sha256=hashlib.sha256(content).hexdigest())


def check_all(files: list[tuple[str | None, bytes]], max_bytes: int) -> tuple[list[Checked], list[Refusal]]:
    """Every file checked; the messages of those refused (all or nothing is kept)."""
    accepted, refused = [], []
    for uploaded_name, content in files:
        result = check(uploaded_name, content, max_bytes)
        (refused if isinstance(result, str) else accepted).append(result)
    return accepted, refused


# --- Stores ----------------------------------------------------------------------------

_STORED_NAME = re.compile(r"[0-9a-f]{32}")


def new_stored_name() -> str:
    return secrets.token_hex(16)


class DatabaseStore:
    """DocumentContent rows, in the request's transaction: a rollback takes them."""

    kind = "database"

    def put(self, db: Session, stored_name: str, content: bytes) -> None:
        db.add(DocumentContent(stored_name=stored_name, content=content))

    def read(self, db: Session, stored_name: str) -> bytes | None:
        row = db.get(DocumentContent, stored_name)
        return None if row is None else bytes(row.content)

    def discard(self, stored_names) -> None:
        return None


class FilesystemStore:
    """One file per document, named by its stored name, in `directory`."""

    kind = "filesystem"

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)

    def put(self, db: Session, stored_name: str, content: bytes) -> None:
        """Atomic: a temporary file in the same directory, flushed to the disk, then
        renamed. On any failure the temporary file goes and nothing else is there."""
        if not _STORED_NAME.fullmatch(stored_name):
            raise ValueError("not a stored name")
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomically(self.directory / stored_name, content)
        _fsync_directory(self.directory)

    def read(self, db: Session, stored_name: str) -> bytes | None:
        if not _STORED_NAME.fullmatch(stored_name or ""):
            return None
        try:
            return (self.directory / stored_name).read_bytes()
        except FileNotFoundError:
            return None

    def discard(self, stored_names) -> None:
        for stored_name in stored_names:
            if _STORED_NAME.fullmatch(stored_name):
                with suppress(FileNotFoundError):
                    (self.directory / stored_name).unlink()


def _fsync_directory(directory: Path) -> None:
    with suppress(OSError):  # not every platform can open a directory
        handle = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def store_kind(setting: str | None, database_url: str) -> str:
    """The store a deployment uses: as set, or by the database (PostgreSQL: several
    servers may share it, so the files go there too)."""
    chosen = (setting or "").strip().lower()
    if not chosen:
        return "database" if database_url.startswith(("postgresql", "postgres")) else "filesystem"
    if chosen not in STORES:
        raise ValueError(f"DOCUMENT_STORE must be one of {', '.join(STORES)}, not {setting!r}")
    return chosen


def make_store(kind: str, directory: str | os.PathLike | None, *, static_dir: str | os.PathLike | None = None):
    if kind == "database":
        return DatabaseStore()
    if kind != "filesystem":
        raise ValueError(f"unknown document store {kind!r}")
    if not directory:
        raise ValueError("DOCUMENT_DIR is needed for the filesystem store")
    path = Path(directory).resolve()
    if static_dir is not None:
        static = Path(static_dir).resolve()
        if path == static or static in path.parents:
            raise ValueError("DOCUMENT_DIR must be outside the static folder: files are never served as they are")
    return FilesystemStore(path)


# --- Keeping them ----------------------------------------------------------------------


@dataclass
class Uploaded:
    documents: list[Document]
    request: ServiceRequest | None  # the "documents" request (None for a draft's upload)
    created: bool  # False: this key (or these files, for a draft) had been uploaded before


@dataclass(frozen=True)
class Quota:
    """What one account may keep in all: bytes and files (0: no limit)."""

    max_bytes: int = 0
    max_files: int = 0


class QuotaExceeded(Exception):
    """The files would take the account past its quota; nothing was kept."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def enforce_quota(db: Session, account_id: int, files: list[Checked], quota: Quota) -> None:
    """Hold the account's row, then count what it keeps: two uploads at the same
    moment (two tabs, two servers) take turns here, so the second counts the
    first's files and both cannot slip under the quota. The hold lasts until the
    caller's commit or rollback (PostgreSQL: a row lock; SQLite: the write lock)."""
    if not files or not (quota.max_bytes > 0 or quota.max_files > 0):
        return
    db.execute(
        update(Account)
        .where(Account.id == account_id)
        .values(status=Account.status)
        .execution_options(synchronize_session=False)
    )
    used_bytes, used_files = db.execute(
        select(func.coalesce(func.sum(Document.size_bytes), 0), func.count(Document.id)).where(
            Document.account_id == account_id
        )
    ).one()
    adding = sum(len(f.content) for f in files)
    these = "this file" if len(files) == 1 else f"these {len(files)} files"
    if quota.max_files > 0 and used_files + len(files) > quota.max_files:
        raise QuotaExceeded(
            f"This account can keep up to {quota.max_files:,} documents and already has "
            f"{used_files:,}, so {these} cannot be added. Contact us if you need to send more"
        )
    if quota.max_bytes > 0 and used_bytes + adding > quota.max_bytes:
        room = max(quota.max_bytes - used_bytes, 0)
        raise QuotaExceeded(
            f"This account can keep up to {human_size(quota.max_bytes)} of documents and has "
            f"{human_size(room)} left, so {these} ({human_size(adding)}) cannot be added. "
            "Contact us if you need to send more"
        )


def _add(
    db: Session,
    now: datetime,
    *,
    store,
    account_id: int,
    user_id: int,
    files: list[Checked],
    description: str,
    service_request_id: int | None,
    draft_id: int | None,
    written: list[str],
    message_post_id: int | None = None,
    quota: Quota | None = None,
) -> list[Document]:
    if quota is not None:
        enforce_quota(db, account_id, files, quota)
    kept = []
    for checked in files:
        stored_name = new_stored_name()
        store.put(db, stored_name, checked.content)
        if store.kind == "filesystem":
            written.append(stored_name)
        document = Document(
            account_id=account_id,
            service_request_id=service_request_id,
            draft_id=draft_id,
            stored_name=stored_name,
            uploaded_name=checked.name,
            content_type=checked.content_type,
            size_bytes=len(checked.content),
            sha256=checked.sha256,
            storage=store.kind,
            description=description,
            uploaded_at=now,
            uploaded_by_user_id=user_id,
            message_post_id=message_post_id,
        )
        db.add(document)
        kept.append(document)
    db.flush()
    for document in kept:
        audit.record(
            db,
            now,
            "document.uploaded",
            actor_user_id=user_id,
            account_id=account_id,
            document=document.id,
            sha256=document.sha256,
            size=document.size_bytes,
            storage=store.kind,
        )
    return kept


def _summary(files: list[Checked], about: ServiceRequest | None) -> str:
    count = f"{len(files)} supporting document{'s' if len(files) != 1 else ''}"
    where = f" for {about.reference}" if about is not None else ""
    return f"{count}{where}: {', '.join(f.name for f in files)}"[:300]


def upload(
    db: Session,
    now: datetime,
    *,
    store,
    account,
    user_id: int,
    files: list[Checked],
    description: str = "",
    key: str,
    about: ServiceRequest | None = None,
    draft: Draft | None = None,
    written: list[str],
    quota: Quota | None = None,
) -> Uploaded:
    """Keep checked files. Tied to a draft: its documents (a file already tied to it
    is not kept twice). Otherwise a "documents" request made idempotently on `key`
    (a retry answers the first upload and keeps nothing more), the documents tied
    to `about` when given, else to that request. Names of files written to a disk
    are added to `written`, so the caller can remove them if the commit fails
    (see commit_or_discard). With a quota, QuotaExceeded when the files do not fit
    (checked in this transaction, after the account's row is held). The caller commits."""
    description = clean_text(description)[:MAX_DESCRIPTION]
    try:
        if draft is not None and draft.submitted_request_id is None:
            fresh, seen = [], set()
            for checked in files:
                twin = db.scalar(
                    select(Document.id)
                    .where(
                        Document.draft_id == draft.id,
                        Document.sha256 == checked.sha256,
                        Document.uploaded_name == checked.name,
                    )
                    .limit(1)
                )
                if twin is None and (checked.sha256, checked.name) not in seen:
                    seen.add((checked.sha256, checked.name))
                    fresh.append(checked)
            kept = _add(
                db,
                now,
                store=store,
                account_id=account.id,
                user_id=user_id,
                files=fresh,
                description=description,
                service_request_id=None,
                draft_id=draft.id,
                written=written,
                quota=quota,
            )
            return Uploaded(kept, None, bool(kept))
        if draft is not None:  # already sent: the documents go with the request it became
            about = db.get(ServiceRequest, draft.submitted_request_id)
        made: list[Document] = []

        def build(db_, request):
            made.extend(
                _add(
                    db_,
                    now,
                    store=store,
                    account_id=account.id,
                    user_id=user_id,
                    files=files,
                    description=description,
                    service_request_id=about.id if about is not None else request.id,
                    draft_id=None,
                    written=written,
                    quota=quota,
                )
            )
            data = requests.answers(request)
            data["documents"] = [document.id for document in made]
            request.data = json.dumps(data, sort_keys=True)

        data = {
            "files": [
                {"name": f.name, "type": KINDS[f.kind].short, "size": len(f.content), "sha256": f.sha256} for f in files
            ],
            "description": description,
            "about": about.reference if about is not None else "",
        }
        result = requests.submit(
            db,
            now,
            account=account,
            user_id=user_id,
            kind="documents",
            key=key,
            summary=_summary(files, about),
            data=data,
            build=build,
        )
        if not result.created:
            store.discard(written)  # another worker made it first: its files stand, these go
            written.clear()
            return Uploaded(documents_of_upload(db, result.request), result.request, False)
        return Uploaded(made, result.request, True)
    except BaseException:
        store.discard(written)
        written.clear()
        raise


def attach_to_post(
    db: Session,
    now: datetime,
    *,
    store,
    account_id: int,
    user_id: int,
    post_id: int,
    files: list[Checked],
    written: list[str],
    quota: Quota | None = None,
) -> list[Document]:
    """Keep checked files as the attachments of a secure message's post. No
    "documents" request is made: the message itself is what the agency answers.
    The caller commits (see commit_or_discard)."""
    try:
        return _add(
            db,
            now,
            store=store,
            account_id=account_id,
            user_id=user_id,
            files=files,
            description="",
            service_request_id=None,
            draft_id=None,
            written=written,
            message_post_id=post_id,
            quota=quota,
        )
    except BaseException:
        store.discard(written)
        written.clear()
        raise


def commit_or_discard(db: Session, store, written: list[str]) -> None:
    """Commit; if the commit fails, the files written for it go too."""
    try:
        db.commit()
    except BaseException:
        with suppress(Exception):
            db.rollback()
        store.discard(written)
        raise


def documents_of_upload(db: Session, request: ServiceRequest) -> list[Document]:
    ids = requests.answers(request).get("documents") or []
    if not ids:
        return []
    return list(db.scalars(select(Document).where(Document.id.in_([int(i) for i in ids])).order_by(Document.id)))


# --- Reading them ----------------------------------------------------------------------

MAX_ID = 2**31 - 1


def of_request(db: Session, request_id: int) -> list[Document]:
    """The documents sent with a request, in the order they were uploaded."""
    query = select(Document).where(Document.service_request_id == request_id)
    return list(db.scalars(query.order_by(Document.uploaded_at, Document.id)))


def find(db: Session, account_id: int, document_id: int) -> Document | None:
    """The account's document with this id; None for another account's, a secure
    message's attachment (its conversation's readers open it there) or none."""
    if not isinstance(document_id, int) or not 0 < document_id <= MAX_ID:
        return None
    document = db.get(Document, document_id)
    if document is None or document.account_id != account_id or document.message_post_id is not None:
        return None
    return document


class Damaged(Exception):
    """The stored bytes are missing or no longer match their SHA-256."""


def content_of(db: Session, document: Document, directory: str | os.PathLike | None) -> bytes:
    """The document's bytes from the store it was written to (whatever the
    current setting), checked against its SHA-256."""
    store = DatabaseStore() if document.storage == "database" else FilesystemStore(directory or ".")
    content = store.read(db, document.stored_name)
    if content is None or hashlib.sha256(content).hexdigest() != document.sha256:
        raise Damaged(document.stored_name)
    return content


@dataclass(frozen=True)
class Row:
    document: Document
    uploaded_by: str
    about: str
    type_label: str
    size: str


def human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size} byte{'s' if size != 1 else ''}"


def of_account(db: Session, account_id: int) -> list[Row]:
    """The account's documents, newest first, with who uploaded each and what it is about.
    Files attached to a secure message belong to its conversation, read there by its readers."""
    documents = list(
        db.scalars(
            select(Document)
            .where(Document.account_id == account_id, Document.message_post_id.is_(None))
            .order_by(Document.uploaded_at.desc(), Document.id.desc())
        )
    )
    user_ids = {d.uploaded_by_user_id for d in documents}
    request_ids = {d.service_request_id for d in documents if d.service_request_id is not None}
    draft_ids = {d.draft_id for d in documents if d.draft_id is not None}
    names = dict(db.execute(select(User.id, User.name).where(User.id.in_(user_ids))).all()) if user_ids else {}
    by_request = (
        {r.id: r for r in db.scalars(select(ServiceRequest).where(ServiceRequest.id.in_(request_ids)))}
        if request_ids
        else {}
    )
    by_draft = {d.id: d for d in db.scalars(select(Draft).where(Draft.id.in_(draft_ids)))} if draft_ids else {}
    by_type = {kind.content_type: kind.short for kind in KINDS.values()}
    rows = []
    for document in documents:
        rows.append(
            Row(
                document=document,
                uploaded_by=names.get(document.uploaded_by_user_id, "Someone"),
                about=_about_text(by_request.get(document.service_request_id), by_draft.get(document.draft_id)),
                type_label=by_type.get(document.content_type, document.content_type),
                size=human_size(document.size_bytes),
            )
        )
    return rows


def _about_text(request: ServiceRequest | None, draft: Draft | None) -> str:
    if request is not None:
        if request.kind == "documents":
            return f"General ({request.reference})"
        return f"{requests.KIND_LABELS.get(request.kind, 'Request')} {request.reference}"
    if draft is not None:
        return f"{requests.KIND_LABELS.get(draft.kind, 'A form')}, not sent yet"
    return "General"


def about_choices(db: Session, account_id: int) -> list[tuple[str, str]]:
    """(reference, label) of the account's returns, objections and waiver requests."""
    return [
        (r.reference, f"{r.summary or requests.KIND_LABELS[r.kind]} ({r.reference})")
        for r in requests.of_account(db, account_id, ABOUT_KINDS)
    ]


def about_request(db: Session, account_id: int, reference: str | None) -> ServiceRequest | None:
    request = requests.find(db, account_id, (reference or "").strip())
    return request if request is not None and request.kind in ABOUT_KINDS else None


def safe_next(target: str | None) -> str | None:
    """A path on this site to go back to: starts with one "/", no scheme or host,
    no backslash, no spaces or control characters. None otherwise."""
    if not target or len(target) > 1000 or not target.startswith("/") or target.startswith("//"):
        return None
    if any(ch == "\\" or ord(ch) <= 0x20 or ord(ch) >= 0x7F for ch in target):
        return None
    return target


def remove_abandoned(db: Session, draft_ids) -> list[str]:
    """Delete the documents tied to drafts that are being purged (never sent), and
    their database content; the caller commits, then discards the returned stored
    names from a filesystem store (after the commit: a rollback keeps the files)."""
    draft_ids = list(draft_ids)
    if not draft_ids:
        return []
    names = list(db.scalars(select(Document.stored_name).where(Document.draft_id.in_(draft_ids))))
    if names:
        db.execute(delete(DocumentContent).where(DocumentContent.stored_name.in_(names)))
        db.execute(delete(Document).where(Document.stored_name.in_(names)))
    return names
