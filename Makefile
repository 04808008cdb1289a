# marketlake: two commands. `make run` runs the platform; `make test` passes the tests.
.PHONY: setup run test demo lint typecheck bench proto clean

VENV := .venv/bin

setup:
	@scripts/setup.sh

run: setup
	$(VENV)/marketlake run

# The suite's own temporary directory (pytest empties it first): pytest's default under /tmp keeps only the
# newest three runs' directories, so a second pytest on the machine could delete a running suite's broker data.
TEST_TMP := .marketlake/test-tmp

TYPED := marketlake live_relay ingestors orchestration assets sensors resources bench

test: setup
	$(VENV)/ruff check .
	$(VENV)/mypy $(TYPED)
	$(VENV)/pytest -q tests --basetemp=$(TEST_TMP) --durations=15

demo: setup
	$(VENV)/marketlake demo

lint: setup
	$(VENV)/ruff check .
	$(VENV)/mypy $(TYPED)

bench: setup
	$(VENV)/python -m bench.history --write bench/RESULTS.md
	$(VENV)/python -m bench.platform --write bench/RESULTS.md
	$(VENV)/python -m bench.relay --write bench/RESULTS.md
	$(VENV)/python -m bench.stream --write bench/RESULTS.md
	$(VENV)/python -m bench.normalise --write bench/RESULTS.md

# Regenerate the protobuf code (committed; tests/test_proto_fresh.py fails when it is stale).
proto: setup
	$(VENV)/python -m grpc_tools.protoc -Ilive_relay/proto --python_out=live_relay/proto \
		--pyi_out=live_relay/proto live_relay/proto/marketlake.proto
	$(VENV)/python -m grpc_tools.protoc -Iingestors/mexc/proto --python_out=ingestors/mexc/proto \
		--pyi_out=ingestors/mexc/proto ingestors/mexc/proto/mexc_push.proto

clean:
	rm -rf .marketlake
