"""Data-only messages between the trusted side and the worker.

Tensors travel as safetensors bytes and everything else as JSON in the safetensors
metadata, so nothing the submission produces is ever unpickled. Decoding validates
sizes, dtypes and types before anything is used."""
from __future__ import annotations

import json
import os
import struct
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

ALLOWED_DTYPES = (torch.float32, torch.float64, torch.int64, torch.bool)
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MAX_TENSORS = 512
MAX_ELEMENTS = 8 * 1024 * 1024
MAX_JSON_CHARS = 1024 * 1024
_LENGTH = struct.Struct("!Q")
FRAME_HEADER = _LENGTH.size


class WireError(ValueError):
    """A message that is not well formed: treated as a protocol failure, never trusted."""


def plain_tensor(value: torch.Tensor) -> torch.Tensor:
    """A detached, contiguous, plain ``torch.Tensor`` copy, whatever subclass came in."""
    base = torch.Tensor.as_subclass(value, torch.Tensor)
    return base.detach().cpu().contiguous().clone()


def encode(tensors: dict[str, torch.Tensor], header: dict[str, Any]) -> bytes:
    meta = {"header": json.dumps(header, sort_keys=True, allow_nan=True)}
    return st_save({k: plain_tensor(v) for k, v in tensors.items()}, metadata=meta)


def _json_header(blob: bytes) -> dict[str, Any]:
    if len(blob) < 8:
        raise WireError("message too short")
    (size,) = struct.unpack("<Q", blob[:8])
    if size > len(blob) - 8 or size > MAX_JSON_CHARS * 4:
        raise WireError("bad safetensors header length")
    try:
        raw = json.loads(blob[8 : 8 + size].decode("utf-8"))
        header = json.loads(raw.get("__metadata__", {}).get("header", "{}"))
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError, TypeError, RecursionError) as exc:
        raise WireError(f"bad header: {exc}") from None
    if not isinstance(header, dict):
        raise WireError("header is not a JSON object")
    return header


def decode(blob: bytes) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Parse and validate a message; raises WireError on anything unexpected."""
    if len(blob) > MAX_MESSAGE_BYTES:
        raise WireError(f"message of {len(blob)} bytes exceeds {MAX_MESSAGE_BYTES}")
    header = _json_header(blob)
    try:
        tensors = st_load(blob)
    except Exception as exc:  # safetensors raises its own error types for malformed data
        raise WireError(f"malformed tensor payload: {type(exc).__name__}: {exc}") from None
    if len(tensors) > MAX_TENSORS:
        raise WireError(f"{len(tensors)} tensors exceed the limit of {MAX_TENSORS}")
    for name, tensor in tensors.items():
        if type(tensor) is not torch.Tensor:
            raise WireError(f"{name}: not a plain tensor")
        if tensor.dtype not in ALLOWED_DTYPES:
            raise WireError(f"{name}: dtype {tensor.dtype} not allowed")
        if tensor.numel() > MAX_ELEMENTS:
            raise WireError(f"{name}: {tensor.numel()} elements exceed {MAX_ELEMENTS}")
    return tensors, header


def frame(payload: bytes) -> bytes:
    """A length-prefixed frame."""
    return _LENGTH.pack(len(payload)) + payload


def write_frame(fd: int, payload: bytes) -> None:
    """Length-prefixed frame on a raw (blocking) file descriptor."""
    view = memoryview(frame(payload))
    while view:
        written = os.write(fd, view)
        view = view[written:]


def read_exact(fd: int, size: int) -> bytes:
    chunks = []
    remaining = size
    while remaining:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise EOFError("pipe closed mid-frame")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, limit: int = MAX_MESSAGE_BYTES) -> bytes:
    (size,) = _LENGTH.unpack(read_exact(fd, _LENGTH.size))
    if size > limit:
        raise WireError(f"frame of {size} bytes exceeds {limit}")
    return read_exact(fd, size)


def frame_length(buffer: bytes | bytearray) -> int:
    """The payload size announced at the start of a frame."""
    (size,) = _LENGTH.unpack(bytes(buffer[:FRAME_HEADER]))
    return size


def split_frame(buffer: bytes, limit: int = MAX_MESSAGE_BYTES) -> bytes:
    """The payload of one complete frame held in ``buffer`` (the worker's answer)."""
    if len(buffer) < _LENGTH.size:
        raise WireError("no answer")
    (size,) = _LENGTH.unpack(buffer[: _LENGTH.size])
    if size > limit or len(buffer) != _LENGTH.size + size:
        raise WireError("truncated or oversized answer")
    return buffer[_LENGTH.size :]
