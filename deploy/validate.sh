#!/usr/bin/env bash
# Validates the deployment files: the Kubernetes manifests against the API
# schemas (kubernetes-validate), security defaults of the manifests and the
# Dockerfile (checkov), and the ConfigMap's catalog with `image-service check-catalog`.
# Tools go into a venv of their own under target/ (installed once).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/deploy-venv
if [ ! -x "$venv/bin/checkov" ] || [ ! -x "$venv/bin/kubernetes-validate" ]; then
  echo "installing kubernetes-validate and checkov into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet kubernetes-validate checkov
fi

manifests=(deploy/kubernetes/namespace.yaml deploy/kubernetes/networkpolicy.yaml
  deploy/kubernetes/configmap.yaml deploy/kubernetes/deployment.yaml deploy/kubernetes/service.yaml)
"$venv/bin/kubernetes-validate" --strict "${manifests[@]}"

# --skip-download: no network here; the built-in policies are what we check against.
"$venv/bin/checkov" --quiet --compact --skip-download --framework kubernetes -d deploy/kubernetes
"$venv/bin/checkov" --quiet --compact --skip-download --framework dockerfile -f Dockerfile

catalog=$(mktemp --suffix=.json)
trap 'rm -f "$catalog"' EXIT
"$venv/bin/python" - "$catalog" <<'PY'
import sys, yaml
with open("deploy/kubernetes/configmap.yaml") as f:
    data = yaml.safe_load(f)["data"]["catalog.json"]
open(sys.argv[1], "w").write(data)
PY
cargo run --quiet --bin image-service -- check-catalog "$catalog"
echo "deployment files: valid"
