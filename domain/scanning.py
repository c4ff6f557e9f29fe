"""Malware scanning of uploaded files, after domain.documents has checked what
they are and before anything is kept. Plain functions, no Flask.

Two scanners, run in this order:

- the built-in recogniser of the EICAR anti-virus test file, always on. Our
  rule (stricter than EICAR's own, which asks a scanner to flag a file that
  STARTS with the 68-byte string, optionally followed by white space, 128
  bytes at most): the 68 bytes anywhere in the file, or anywhere in any part of
  an Excel or Word file (a zip) once expanded. It proves the refusal path end
  to end where no real scanner runs; it finds nothing else.
- clamd, when CLAMD_ADDRESS is set ("unix:/run/clamav/clamd.ctl", a socket
  path, or "host:port"): the file is streamed with the INSTREAM command
  ("zINSTREAM\\0", chunks each led by its length as 4 bytes big-endian, a
  zero-length chunk to end) and the reply read: "stream: OK" is clean,
  "stream: <name> FOUND" is malware, anything else (an ERROR, a size limit,
  no answer, no connection) means the file could not be checked.

A file that could not be checked is refused (fail closed): a scanner that is
down must not become a way in. The person is told to try again later."""

from __future__ import annotations

import io
import socket
import struct
import zipfile
from dataclasses import dataclass

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_NAME = "Eicar-Test-Signature"
CHUNK = 64 * 1024
_MAX_REPLY = 4096


@dataclass(frozen=True)
class Verdict:
    """ "clean", "infected" (with the signature's name) or "unavailable" (with why)."""

    outcome: str
    signature: str = ""
    detail: str = ""

    @property
    def clean(self) -> bool:
        return self.outcome == "clean"


CLEAN = Verdict("clean")


# --- The built-in EICAR recogniser ---------------------------------------------------------


def _stream_has(stream, needle: bytes) -> bool:
    """`needle` anywhere in what `stream` reads, chunk by chunk (overlapping)."""
    tail = b""
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            return False
        if needle in tail + chunk:
            return True
        tail = chunk[-(len(needle) - 1) :]


def eicar_scan(content: bytes) -> Verdict:
    """The EICAR test string in the bytes, or in a zip's parts once expanded. The
    zip has been checked already (domain.documents: its declared sizes and parts),
    so expanding it here is bounded."""
    if EICAR in content:
        return Verdict("infected", EICAR_NAME)
    if content[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                for entry in archive.infolist():
                    with archive.open(entry) as part:
                        if _stream_has(part, EICAR):
                            return Verdict("infected", EICAR_NAME)
        except Exception:  # not a sound zip: domain.documents has refused it already
            return CLEAN
    return CLEAN


# --- clamd -------------------------------------------------------------------------------------


def parse_address(address: str):
    """(family, address) for socket.socket from "unix:/path", "/path" or "host:port"."""
    address = (address or "").strip()
    if address.startswith("unix:"):
        return socket.AF_UNIX, address[len("unix:") :]
    if address.startswith("/"):
        return socket.AF_UNIX, address
    if address.startswith("tcp://"):
        address = address[len("tcp://") :]
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"CLAMD_ADDRESS must be unix:/path/to/socket or host:port, not {address!r}")
    return socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET, (host.strip("[]"), int(port))


def clamd_scan(content: bytes, address: str, timeout: float = 30.0) -> Verdict:
    """The file streamed to clamd (INSTREAM) and its answer."""
    try:
        family, target = parse_address(address)
    except ValueError as error:
        return Verdict("unavailable", detail=str(error))
    try:
        with socket.socket(family, socket.SOCK_STREAM) as connection:
            connection.settimeout(timeout)
            connection.connect(target)
            connection.sendall(b"zINSTREAM\0")
            view = memoryview(content)
            for start in range(0, len(view), CHUNK):
                piece = view[start : start + CHUNK]
                connection.sendall(struct.pack(">I", len(piece)) + piece)
            connection.sendall(struct.pack(">I", 0))
            reply = b""
            while b"\0" not in reply and len(reply) < _MAX_REPLY:
                data = connection.recv(_MAX_REPLY)
                if not data:
                    break
                reply += data
    except OSError as error:  # refused, reset, timed out, no such socket
        return Verdict("unavailable", detail=f"clamd: {type(error).__name__}: {error}")
    return parse_reply(reply)


def parse_reply(reply: bytes) -> Verdict:
    text = reply.split(b"\0", 1)[0].decode("utf-8", "replace").strip()
    if text.endswith(" FOUND"):
        found = text[: -len(" FOUND")]
        name = found.split(": ", 1)[1] if ": " in found else found
        return Verdict("infected", name.strip() or "unknown")
    if text == "stream: OK" or text.endswith(": OK"):
        return CLEAN
    return Verdict("unavailable", detail=f"clamd answered {text[:200]!r}")


# --- Both ---------------------------------------------------------------------------------------


def scan(content: bytes, *, clamd_address: str = "", timeout: float = 30.0) -> Verdict:
    """The built-in recogniser, then clamd when an address is set."""
    verdict = eicar_scan(content)
    if not verdict.clean or not clamd_address:
        return verdict
    return clamd_scan(content, clamd_address, timeout)
