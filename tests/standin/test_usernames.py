"""Any XNAT-possible username survives the trip: URL-quoted in the path, exact (case-sensitive) in the lookup."""

from __future__ import annotations

from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.standin.server import XnatStandin

# Basic auth cannot carry ':' in a username; '/' and '\' are refused by Tomcat when encoded.
names = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters=":/\\"), min_size=1, max_size=40
).filter(lambda n: n.strip(".") != "")


def test_any_username_round_trips_exactly():
    with XnatStandin().run_in_thread() as standin, httpx.Client(base_url=standin.url, timeout=10) as client:

        @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(name=names)
        def check(name: str) -> None:
            standin.reset()
            standin.add_user(name, "pw", ["Jupyter"])
            client.cookies.clear()
            response = client.get(f"/xapi/users/{quote(name, safe='')}/roles", auth=(name, "pw"))
            assert response.status_code == 200, (name, response.text)
            assert standin.requests[-1]["user"] == name
            if name.swapcase() != name:
                client.cookies.clear()
                other = client.get(f"/xapi/users/{quote(name.swapcase(), safe='')}/roles",
                                   auth=(name.swapcase(), "pw"))
                assert other.status_code == 401

        check()
