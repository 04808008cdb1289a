"""MEXC push-frame protobuf schema (mexc_push.proto) and its generated code."""
