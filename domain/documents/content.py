"""What an uploaded file is, from its CONTENT, never its name: a PDF's header and
trailer, an image Pillow opens and verifies, an Excel or Word file's zip parts,
CSV as UTF-8 text. The name must agree with the content (a web page or a PNG
named .pdf is refused) and is kept only to show and to name the download. A
file that is also something else is refused (a polyglot: markup where a browser
sniffs, a PDF header after other bytes, a zip appended to a PDF or an image),
and so is a zip whose parts would expand too far, climb out of a folder (../,
absolute, links) or hold another archive. Malware scanning (domain.scanning)
comes after these checks. Plain functions, no Flask, no database.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
import warnings
import zipfile
from dataclasses import dataclass

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

# A name kept to show is cut to this many characters (its extension kept).
MAX_NAME = 200


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
    "bomb", "unsafe_parts", "nested", "malware"...; for malware, the scanner's name
    for it and the file's SHA-256."""

    reason: str
    signature: str | None
    sha256: str | None

    def __new__(cls, message: str, reason: str, *, signature: str | None = None, sha256: str | None = None):
        refusal = super().__new__(cls, message)
        refusal.reason, refusal.signature, refusal.sha256 = reason, signature, sha256
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
    refusal = _refused_for_kind(called, found, extension) or _refused_for_problem(called, found.problem)
    if refusal is not None:
        return refusal
    kind = KINDS[found.family]
    return Checked(
        name=_name_to_keep(name, extension, kind),
        content=content,
        kind=kind.key,
        sha256=hashlib.sha256(content).hexdigest(),
    )


def _refused_for_kind(called: str, found: Found, extension: str) -> Refusal | None:
    """Refused for what the file is, or for a name that does not agree with it;
    None when the kind is accepted (a problem with it is judged after)."""
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
        return _refused_for_parts(called, found.problem)
    if found.family == "zip" and found.problem and named_as in ("xlsx", "docx"):
        return None  # an Excel or Word file could not be checked: _refused_for_problem says why
    if found.family == "csv":
        return _refused_as_text(called, named_as)
    if found.family in KINDS:
        return _refused_for_name(called, found.family, named_as, extension)
    if named_as == "csv" and found.family == "binary":
        return Refusal(f"{called} is not UTF-8 text. Save it as CSV UTF-8 and upload it", "type")
    what = _REFUSED_LABELS.get(found.family, _REFUSED_LABELS["binary"])
    if named_as is not None:
        return Refusal(
            f"{called} is named as {KINDS[named_as].label} but it is {what}: we cannot accept it", "mismatch"
        )
    return Refusal(f"{called} must be a {ACCEPTED_LIST} file", "type")


def _refused_for_parts(called: str, problem: str) -> Refusal:
    """An Excel or Word file with another archive inside, or parts no real one has."""
    if problem == "nested":
        return Refusal(
            f"{called} has another compressed file inside it: we cannot accept it. Save it again "
            "without embedded files and upload it",
            "nested",
        )
    return Refusal(
        f"{called} is damaged or unsafe: its parts have names no Excel or Word file has. Save it again and upload it",
        "unsafe_parts",
    )


def _refused_as_text(called: str, named_as: str | None) -> Refusal | None:
    """Text is accepted only as a file named .csv."""
    if named_as not in (None, "csv"):
        return Refusal(f"{called} is named as {KINDS[named_as].label} but it is text: upload the real file", "mismatch")
    if named_as != "csv":
        return Refusal(f"{called} must be a {ACCEPTED_LIST} file", "type")
    return None


def _refused_for_name(called: str, family: str, named_as: str | None, extension: str) -> Refusal | None:
    """An accepted kind whose name says it is another kind, or ends in an extension we do not know."""
    right = KINDS[family].extensions[0]
    if named_as is not None and named_as != family:
        return Refusal(
            f"{called} is named as {KINDS[named_as].label} but it is {KINDS[family].label}: "
            f"rename it to end in {right}, or upload the real file",
            "mismatch",
        )
    if named_as is None and extension:
        return Refusal(
            f"{called} is {KINDS[family].label} but its name ends in {extension}: rename it to end in {right}",
            "mismatch",
        )
    return None


# Why a file of an accepted kind is not fit to keep; the reason is the problem's own word.
_PROBLEM_MESSAGES = {
    "incomplete": "{called} looks incomplete. Save the PDF again and upload it",
    "damaged": "{called} is damaged and cannot be opened. Save it again and upload it",
    "too_many_pixels": "{called} has too many pixels. Save it at a lower resolution and upload it",
    "bomb": "{called} expands to too much data to check. Save it again without embedded files, or split it",
    "encrypted": "{called} is protected with a password. Save it without the password and upload it",
    "macros": "{called} contains macros. Save it as a file without macros and upload it",
}


def _refused_for_problem(called: str, problem: str | None) -> Refusal | None:
    message = _PROBLEM_MESSAGES.get(problem or "")
    return None if message is None else Refusal(message.format(called=called), problem or "")


def _name_to_keep(name: str, extension: str, kind: Kind) -> str:
    """The shown name, given the kind's extension when it has none (or a plain name when nothing was left)."""
    if not name:
        return "document" + kind.extensions[0]
    if extension:
        return name
    name = clean_name(name + kind.extensions[0])
    if extension_of(name) != kind.extensions[0]:  # the name was cut to make room
        name = name[: MAX_NAME - len(kind.extensions[0])] + kind.extensions[0]
    return name


def check_all(files: list[tuple[str | None, bytes]], max_bytes: int) -> tuple[list[Checked], list[Refusal]]:
    """Every file checked; the messages of those refused (all or nothing is kept)."""
    accepted: list[Checked] = []
    refused: list[Refusal] = []
    for uploaded_name, content in files:
        result = check(uploaded_name, content, max_bytes)
        if isinstance(result, Refusal):
            refused.append(result)
        else:
            accepted.append(result)
    return accepted, refused
