"""The hub image's HEALTHCHECK: healthy when /hub/health answers 200 through the proxy on port 8000."""

import os
import sys
import urllib.request

base_url = "/" + os.environ.get("JH_BASE_URL", "/jupyterhub").strip("/")
url = f"http://127.0.0.1:8000{base_url.rstrip('/')}/hub/health"
try:
    with urllib.request.urlopen(url, timeout=15) as response:
        sys.exit(0 if response.status == 200 else 1)
except OSError as e:
    print(f"{url}: {e}", file=sys.stderr)
    sys.exit(1)
