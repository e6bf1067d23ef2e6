"""Checkpoints that lose nothing: written atomically, verified by a checksum when read.

A checkpoint file is a fixed-size text header followed by an ``.npz`` archive (NumPy's zip of
arrays, read back with ``allow_pickle=False``, so loading one never runs code)::

    MINICNN-CHECKPOINT 1\\n
    sha256 <64 hex digits> bytes <20 digits>\\n
    <npz: the arrays by name, plus "__meta__", a UTF-8 JSON document>

``save`` writes ``<path>.tmp-<pid>`` in the same folder, flushes and fsyncs it, renames it over
``path`` (``os.replace`` is atomic on POSIX and Windows) and fsyncs the folder. A crash at any
moment leaves either the old checkpoint or the new one, never half of one. ``load`` checks the
header, the length and the SHA-256 of everything after the header before it parses anything, and
raises ``CheckpointError`` naming the file and what is wrong with it.
"""
from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from .errors import MiniCNNError

MAGIC = b"MINICNN-CHECKPOINT 1\n"
_HEADER = MAGIC + b"sha256 %s bytes %020d\n"
HEADER_SIZE = len(MAGIC) + len(b"sha256 ") + 64 + len(b" bytes ") + 20 + 1
_CHUNK = 1 << 22


class CheckpointError(MiniCNNError, ValueError):
    """A checkpoint that is missing, truncated, corrupt, or not a minicnn checkpoint."""


def _digest(f, length):
    """SHA-256 of the next ``length`` bytes of ``f`` (fewer if the file ends first), in chunks."""
    sha = hashlib.sha256()
    left = length
    while left:
        block = f.read(min(_CHUNK, left))
        if not block:
            break
        sha.update(block)
        left -= len(block)
    return sha.hexdigest()


def save(path, arrays, meta):
    """Write ``arrays`` (name -> NumPy array) and ``meta`` (JSON-serialisable) to ``path`` atomically."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if "__meta__" in arrays:
        raise CheckpointError("checkpoint.save: '__meta__' is reserved for the metadata")
    meta_bytes = np.frombuffer(json.dumps(meta, sort_keys=True).encode("utf-8"), dtype=np.uint8)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w+b") as f:
            f.write(b"\0" * HEADER_SIZE)  # reserved; the real header is written once the digest is known
            np.savez(f, __meta__=meta_bytes, **arrays)
            length = f.tell() - HEADER_SIZE
            f.seek(HEADER_SIZE)
            digest = _digest(f, length)
            f.seek(0)
            f.write(_HEADER % (digest.encode(), length))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(exc, OSError):  # disk full, read-only, gone: one line; the previous file is untouched
            raise CheckpointError(f"cannot write {path}: {exc.strerror or exc}; the previous checkpoint there, if "
                                  "any, is intact") from None
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return path


def load(path):
    """Read and verify a checkpoint: returns ``(arrays, meta)``."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        header = f.read(HEADER_SIZE)
        if not header.startswith(MAGIC):
            raise CheckpointError(f"{path} is not a minicnn checkpoint (it does not start with {MAGIC[:-1].decode()!r})")
        try:
            fields = header[len(MAGIC):].split()
            expected_digest, expected_length = fields[1].decode(), int(fields[3])
            hex_digest = len(expected_digest) == 64 and all(c in "0123456789abcdef" for c in expected_digest)
            if fields[0] != b"sha256" or fields[2] != b"bytes" or not hex_digest:
                raise ValueError
        except (IndexError, ValueError, UnicodeDecodeError):
            raise CheckpointError(f"{path}: the checkpoint header is damaged") from None
        if size != HEADER_SIZE + expected_length:
            raise CheckpointError(f"{path} is truncated or has extra bytes: the header promises "
                                  f"{expected_length} bytes of data, the file holds {max(size - HEADER_SIZE, 0)}")
        digest = _digest(f, expected_length)
        if digest != expected_digest:
            raise CheckpointError(f"{path} is corrupt: its SHA-256 is {digest[:16]}..., the header records "
                                  f"{expected_digest[:16]}...")
        f.seek(HEADER_SIZE)
        try:
            with np.load(f, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
            meta = json.loads(arrays.pop("__meta__").tobytes().decode("utf-8"))
        except (OSError, ValueError, KeyError) as exc:  # checksum fine but not written by save()
            raise CheckpointError(f"{path}: cannot read the checkpoint's arrays: {exc}") from None
    return arrays, meta
