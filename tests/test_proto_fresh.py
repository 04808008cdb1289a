"""The committed protobuf code is what protoc makes of the committed .proto files (ours and MEXC's push schema)."""

from __future__ import annotations

from pathlib import Path

import pytest
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = [ROOT / "live_relay" / "proto" / "marketlake.proto", ROOT / "ingestors" / "mexc" / "proto" / "mexc_push.proto"]


@pytest.mark.parametrize("proto", PROTOS, ids=lambda p: p.name)
def test_generated_code_is_fresh(proto: Path, tmp_path: Path) -> None:
    rc = protoc.main(["protoc", f"-I{proto.parent}", f"--python_out={tmp_path}", f"--pyi_out={tmp_path}", str(proto)])
    assert rc == 0
    for name in (f"{proto.stem}_pb2.py", f"{proto.stem}_pb2.pyi"):
        assert (tmp_path / name).read_text() == (proto.parent / name).read_text(), f"{name} is stale: run `make proto`"
