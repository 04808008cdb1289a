"""The committed protobuf code is what protoc makes of the committed .proto."""

from __future__ import annotations

from pathlib import Path

from grpc_tools import protoc

PROTO_DIR = Path(__file__).resolve().parent.parent / "live_relay" / "proto"


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    rc = protoc.main(["protoc", f"-I{PROTO_DIR}", f"--python_out={tmp_path}", f"--pyi_out={tmp_path}",
                      str(PROTO_DIR / "marketlake.proto")])
    assert rc == 0
    for name in ("marketlake_pb2.py", "marketlake_pb2.pyi"):
        assert (tmp_path / name).read_text() == (PROTO_DIR / name).read_text(), f"{name} is stale: run `make proto`"
