# Entry points for the AWS deployment; the work is in scripts/ (see docs/DEPLOY.md).
# `make lint-infra` needs no AWS account and is what CI runs; the others talk to AWS.
STACK ?= orders
export STACK

.PHONY: help venv tools build deploy url admin-token seed test-deployed delete lint-infra

help:
	@echo "make tools          cargo-lambda (+zig), SAM CLI, cfn-lint into .venv; aarch64 target"
	@echo "make build          cargo lambda build --release --arm64 (the five Lambda binaries)"
	@echo "make deploy         sam deploy --guided (stack \$$STACK, default orders)"
	@echo "make admin-token    an admin token from the pool's token endpoint (client credentials)"
	@echo "make seed           PUT the catalogue (laptop ... headphones = 1000000, sold-out = 0; TOKEN=<admin token>)"
	@echo "make test-deployed  BASE_URL=<ApiUrl> ./test-api.sh (ADMIN_TOKEN, TOKEN, TOKEN_SUB)"
	@echo "make delete         delete the stack; the tables and the user pool are kept (it says how to remove them)"
	@echo "make lint-infra     offline: cfn-lint, sam validate --lint, checkov, template contract test"

venv:
	bash scripts/setup-venv.sh

tools:
	bash scripts/deploy.sh tools

build:
	bash scripts/deploy.sh build

deploy:
	bash scripts/deploy.sh deploy

url:
	@bash scripts/deploy.sh url

admin-token:
	bash scripts/deploy.sh admin-token

seed:
	bash scripts/deploy.sh seed

test-deployed:
	bash scripts/deploy.sh test

delete:
	bash scripts/deploy.sh delete

lint-infra: venv
	bash scripts/lint-infra.sh
	cargo test --test process template_contract
