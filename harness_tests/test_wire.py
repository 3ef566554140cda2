"""The data-only wire format between the trusted side and the worker: round trips, and
every malformed or hostile message is refused with a WireError (never unpickled,
never a crash of another type)."""
from __future__ import annotations

import io
import json
import os
import pickle
import random
import struct

import pytest
import torch
from safetensors.torch import save as st_save

from autograder import wire
from autograder.wire import WireError, decode, encode, plain_tensor, read_frame, split_frame, write_frame


def _raw_message(header: dict | list | str, payload: bytes = b"") -> bytes:
    """A safetensors-shaped message with an arbitrary JSON header."""
    text = header if isinstance(header, str) else json.dumps(header)
    raw = text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw + payload


# ------------------------------------------------------------------ round trips

def test_round_trip_tensors_and_header() -> None:
    g = torch.Generator().manual_seed(0)
    tensors = {
        "out": torch.randn(3, 4, generator=g),
        "grad.mu": torch.randn(5, generator=g, dtype=torch.float64),
        "index": torch.arange(6).reshape(2, 3),
        "mask": torch.tensor([True, False, True]),
        "scalar": torch.tensor(1.5),
        "empty": torch.zeros(0, 3),
    }
    header = {"status": "ok", "values": {"n": 3, "shape": [2, 3], "nested": {"a": None}}, "message": "héllo ✓", "nan": float("nan")}
    blob = encode(tensors, header)
    assert isinstance(blob, bytes)
    got, got_header = decode(blob)
    assert set(got) == set(tensors)
    for name, tensor in tensors.items():
        assert type(got[name]) is torch.Tensor
        assert got[name].dtype == tensor.dtype and got[name].shape == tensor.shape
        assert torch.equal(got[name], tensor), name
    nan = got_header.pop("nan")
    assert nan != nan
    assert got_header == {k: v for k, v in header.items() if k != "nan"}


def test_round_trip_header_only() -> None:
    tensors, header = decode(encode({}, {"status": "error", "message": "boom"}))
    assert tensors == {} and header == {"status": "error", "message": "boom"}


def test_encode_copies_non_contiguous_and_grad_tensors() -> None:
    base = torch.randn(4, 6, requires_grad=True)
    view = (base * 2).t()[::2]
    got, _ = decode(encode({"v": view}, {}))
    assert torch.equal(got["v"], view.detach()) and not got["v"].requires_grad


# ------------------------------------------------------------------ plain_tensor

class Sneaky(torch.Tensor):
    """A tensor subclass a submission might return (e.g. to run code on the trusted side)."""

    marker = "sneaky"


def test_plain_tensor_strips_a_subclass() -> None:
    original = torch.randn(3, 2)
    sneaky = original.clone().as_subclass(Sneaky)
    assert type(sneaky) is Sneaky
    plain = plain_tensor(sneaky)
    assert type(plain) is torch.Tensor
    assert not hasattr(plain, "marker")
    assert torch.equal(plain, original)
    assert plain.data_ptr() != sneaky.data_ptr()  # a copy, not a view of the student's storage


def test_plain_tensor_of_parameter_and_grad_tensor() -> None:
    param = torch.nn.Parameter(torch.randn(2, 2))
    plain = plain_tensor(param)
    assert type(plain) is torch.Tensor and not plain.requires_grad and plain.grad_fn is None
    transposed = torch.randn(3, 5).t()
    assert plain_tensor(transposed).is_contiguous()


def test_encode_sends_subclasses_as_plain_tensors() -> None:
    got, _ = decode(encode({"x": torch.ones(2).as_subclass(Sneaky)}, {}))
    assert type(got["x"]) is torch.Tensor


# ------------------------------------------------------------------ rejected messages

@pytest.mark.parametrize(
    "payload",
    [
        pickle.dumps({"out": torch.ones(2)}),
        pickle.dumps(torch.ones(2), protocol=2),
        pickle.dumps("x" * 100),
    ],
    ids=["pickled-dict", "pickled-tensor-protocol2", "pickled-str"],
)
def test_pickle_payload_is_rejected(payload: bytes) -> None:
    with pytest.raises(WireError):
        decode(payload)


def test_torch_save_payload_is_rejected() -> None:
    buffer = io.BytesIO()
    torch.save({"out": torch.ones(2)}, buffer)
    with pytest.raises(WireError):
        decode(buffer.getvalue())


def test_a_pickle_inside_a_valid_header_is_not_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Even a well-formed message whose tensor bytes are a pickle is never unpickled."""
    def _boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("decode must never unpickle")

    monkeypatch.setattr(pickle, "loads", _boom)
    monkeypatch.setattr(pickle, "load", _boom)
    monkeypatch.setattr(torch, "load", _boom)
    body = pickle.dumps([1, 2, 3])
    blob = _raw_message({"t": {"dtype": "F32", "shape": [len(body) // 4], "data_offsets": [0, len(body) // 4 * 4]}}, body[: len(body) // 4 * 4])
    try:
        tensors, _ = decode(blob)
    except WireError:
        return
    assert all(type(t) is torch.Tensor for t in tensors.values())


@pytest.mark.parametrize("seed", range(20))
def test_random_bytes_are_rejected(seed: int) -> None:
    rng = random.Random(seed)
    blob = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300)))
    with pytest.raises(WireError):
        decode(blob)


@pytest.mark.parametrize("seed", range(10))
def test_random_bytes_with_a_plausible_length_are_rejected(seed: int) -> None:
    rng = random.Random(1000 + seed)
    body = bytes(rng.getrandbits(8) for _ in range(200))
    with pytest.raises(WireError):
        decode(struct.pack("<Q", rng.randint(2, 200)) + body)


def test_truncated_messages_are_rejected() -> None:
    blob = encode({"a": torch.randn(10, 10), "b": torch.arange(5)}, {"status": "ok"})
    for cut in (0, 1, 7, 8, 9, 20, len(blob) // 2, len(blob) - 1):
        with pytest.raises(WireError):
            decode(blob[:cut])


def test_trailing_garbage_is_rejected() -> None:
    blob = encode({"a": torch.randn(4)}, {"status": "ok"})
    with pytest.raises(WireError):
        decode(blob + b"\x00" * 8)


@pytest.mark.parametrize(
    "tensor",
    [
        torch.zeros(3, dtype=torch.uint8),
        torch.zeros(3, dtype=torch.int8),
        torch.zeros(3, dtype=torch.int32),
        torch.zeros(3, dtype=torch.float16),
        torch.zeros(3, dtype=torch.bfloat16),
    ],
    ids=lambda t: str(t.dtype),
)
def test_disallowed_dtypes_are_rejected(tensor: torch.Tensor) -> None:
    blob = st_save({"ok": torch.zeros(2), "bad": tensor}, metadata={"header": "{}"})
    with pytest.raises(WireError, match="not allowed"):
        decode(blob)


def test_complex_dtype_is_rejected() -> None:
    data = b"\x00" * 16
    blob = _raw_message({"c": {"dtype": "C64", "shape": [2], "data_offsets": [0, 16]}}, data)
    with pytest.raises(WireError):
        decode(blob)


def test_too_many_tensors_are_rejected() -> None:
    blob = encode({f"t{i}": torch.zeros(1) for i in range(wire.MAX_TENSORS + 1)}, {})
    with pytest.raises(WireError, match="exceed the limit"):
        decode(blob)
    tensors, _ = decode(encode({f"t{i}": torch.zeros(1) for i in range(wire.MAX_TENSORS)}, {}))
    assert len(tensors) == wire.MAX_TENSORS


def test_too_many_elements_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "MAX_ELEMENTS", 100)
    decode(encode({"a": torch.zeros(100)}, {}))
    with pytest.raises(WireError, match="elements"):
        decode(encode({"a": torch.zeros(101)}, {}))


def test_oversized_header_is_rejected() -> None:
    blob = encode({}, {"message": "x" * (wire.MAX_JSON_CHARS * 4 + 10)})
    with pytest.raises(WireError, match="header"):
        decode(blob)


def test_header_length_beyond_the_message_is_rejected() -> None:
    with pytest.raises(WireError):
        decode(struct.pack("<Q", 2**63) + b"{}")


def test_oversized_message_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    blob = encode({"a": torch.zeros(64)}, {})
    monkeypatch.setattr(wire, "MAX_MESSAGE_BYTES", len(blob) - 1)
    with pytest.raises(WireError, match="exceeds"):
        decode(blob)


@pytest.mark.parametrize(
    "header",
    [
        [1, 2, 3],
        "null",
        {"__metadata__": {"header": "[1, 2]"}},
        {"__metadata__": {"header": "not json"}},
        {"__metadata__": []},
    ],
    ids=["list", "null", "header-list", "header-not-json", "metadata-list"],
)
def test_malformed_json_headers_are_rejected(header: object) -> None:
    with pytest.raises(WireError):
        decode(_raw_message(header))  # type: ignore[arg-type]


def test_invalid_utf8_header_is_rejected() -> None:
    raw = b'{"\xff\xfe": 1}'
    with pytest.raises(WireError):
        decode(struct.pack("<Q", len(raw)) + raw)


def test_non_string_metadata_header_is_a_wire_error() -> None:
    with pytest.raises(WireError):
        decode(_raw_message({"__metadata__": {"header": 5}}))


def test_deeply_nested_header_is_a_wire_error() -> None:
    depth = 100_000
    with pytest.raises(WireError):
        decode(_raw_message({"__metadata__": {"header": "[" * depth + "]" * depth}}))


# ------------------------------------------------------------------ frames

def _frame(payload: bytes) -> bytes:
    return struct.pack("!Q", len(payload)) + payload


def test_split_frame_round_trip() -> None:
    payload = encode({"a": torch.ones(3)}, {"status": "ok"})
    assert split_frame(_frame(payload)) == payload
    assert split_frame(_frame(b"")) == b""


@pytest.mark.parametrize("cut", [0, 3, 7])
def test_split_frame_without_a_length_is_rejected(cut: int) -> None:
    with pytest.raises(WireError, match="no answer"):
        split_frame(_frame(b"abc")[:cut])


def test_split_frame_rejects_truncated_and_padded_frames() -> None:
    frame = _frame(b"0123456789")
    for bad in (frame[:-1], frame[:9], frame + b"x", frame + frame):
        with pytest.raises(WireError, match="truncated or oversized"):
            split_frame(bad)


def test_split_frame_rejects_oversized_frames() -> None:
    frame = _frame(b"x" * 100)
    assert split_frame(frame, limit=100) == b"x" * 100
    with pytest.raises(WireError):
        split_frame(frame, limit=99)
    with pytest.raises(WireError):
        split_frame(struct.pack("!Q", 2**62))


def test_write_and_read_frame_over_a_pipe() -> None:
    r, w = os.pipe()
    try:
        payload = encode({"a": torch.arange(4)}, {"k": "v"})
        write_frame(w, payload)
        assert read_frame(r) == payload
        write_frame(w, b"x" * 50)
        with pytest.raises(WireError, match="exceeds"):
            read_frame(r, limit=49)
    finally:
        os.close(r)
        os.close(w)


def test_read_frame_on_a_closed_pipe_mid_frame() -> None:
    r, w = os.pipe()
    try:
        os.write(w, struct.pack("!Q", 10) + b"abc")
        os.close(w)
        w = -1
        with pytest.raises(EOFError):
            read_frame(r)
    finally:
        os.close(r)
        if w != -1:
            os.close(w)
