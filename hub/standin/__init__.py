"""An XNAT stand-in: a real HTTP server that answers the hub's XNAT calls with the XNAT plugin's exact shapes.

XNAT cannot run on our machines, so tests and the demo talk to this instead. It is the only thing in the project
that stands in for something else. Modules:

- `hub.standin.server`: `XnatStandin`, the server (XNAT port + control port).
- `hub.standin.options`: `user_options(...)`, `start_request_body(...)`, `event_tracking_id(now)`,
  `project_mounts(...)`: the plugin's JSON documents (integration spec §6.1/§6.2).
- `hub.standin.plugin`: `XnatPlugin`, XNAT's calls *to the hub* (create user, start, poll, token, stop).
- `hub.standin.faults`: `Fault` and the garbage bodies.
- `hub.standin.demo`: the demo cast for `--seed-demo`.

XNAT endpoints (XNAT port)
--------------------------
Authentication is HTTP Basic, or a live `JSESSIONID` cookie. Usernames are case-sensitive (`Alice.Smith` is not
`alice.smith`) and URL-decoded from the path; an encoded `/` or `\\` (`%2F`, `%5C`) gets 400, as from Tomcat.

- `GET /xapi/users/{username}/roles`: JSON array of role names. 401 bad or missing credentials (or a disabled
  account), 403 if the caller is neither that user nor an `Administrator`, 404 unknown user (admin caller).
- `GET /xapi/jupyterhub/preferences`: map of every preference for callers with role `JupyterHub` or
  `Administrator`; only `{"allUsersCanStartJupyter": ...}` for everyone else.
- `GET /xapi/jupyterhub/preferences/{name}`: `{name: value}`, any authenticated user; 404 unknown name;
  `jupyterHubToken` is 403 unless the caller has role `JupyterHub` or `Administrator`.
- `GET /xapi/jupyterhub/users/{user}/server/user-options` (default server, "") and
  `GET /xapi/jupyterhub/users/{user}/server/{servername}/user-options`: the stored XnatUserOptions. The caller
  needs role `JupyterHub` or `Administrator` (else 403, even for the user); 404 with the text
  `User options not found.` when none is stored for exactly (user, servername).
- `POST /data/JSESSION` (and `GET`): the session id as text; `DELETE /data/JSESSION`: ends the cookie's session
  (or the one the request's Basic credentials just opened), 200.

Sessions behave like Tomcat behind Spring Security: a Basic-authenticated request without a live session for the
same user opens one and sets the `JSESSIONID` cookie, so a client that never DELETEs `/data/JSESSION` leaks one
session per call (`open_sessions` counts them). A live session of the same user is reused *without checking the
password*, so a client sharing one cookie jar between users lets a wrong password in; Basic credentials of another
user replace the session.

Any other path, including `.../server//user-options`, is 404. Errors are short `text/plain` bodies; 401 carries
`WWW-Authenticate: Basic realm="XNAT"`.

Python API (in-process)
-----------------------
::

    from hub.standin.server import XnatStandin
    from hub.standin.options import user_options

    standin = XnatStandin()
    urls = await standin.start(host="127.0.0.1", port=0, control_port=0)   # -> StandinUrls(xnat, control)
    # start(..., control_host=..., ssl_context=ctx): HTTPS on the XNAT port (server-side SSLContext; for client
    # certificates set ctx.verify_mode = CERT_REQUIRED and load a CA). The control port stays plain HTTP.
    standin.url, standin.control_url, standin.port, standin.control_port
    standin.add_user("Alice.Smith", "pw", ["Jupyter"], enabled=True)       # replaces an existing account
    standin.remove_user("Alice.Smith")
    standin.add_user("jupyterhub", "svc-pw", ["JupyterHub"])              # the hub's service account
    standin.set_user_options("Alice.Smith", "20240615T101530123Z", user_options("Alice.Smith", "2024..."))
    standin.set_user_options("Alice.Smith", "", {...})                    # "" = default server; any JSON value
    standin.remove_user_options(user, server)
    standin.set_preferences({"allUsersCanStartJupyter": True})
    standin.set_fault(latency=0.1)                                         # seconds, every answer, non-blocking
    standin.set_fault(status=503, path="/xapi/users/*/roles", times=1)     # glob on the raw path; next N requests
    standin.set_fault(garbage="html" | "truncated-json" | "wrong-types")   # status 200 unless status= is given
    standin.set_fault(down=True)                                           # XNAT port refuses connections
    standin.set_fault(down=False)  /  standin.clear_faults()               # listen again, same port
    standin.faults, standin.is_down
    standin.requests            # [{"method","path","user","authenticated","status","seconds"}], the last 10 000;
                                # raw paths, never a password, token or query string
    standin.requests_to("/xapi/users/*/roles"), standin.clear_requests()
    standin.open_sessions, standin.sessions_by_user()
    standin.reset()             # users, options, sessions, log, faults gone; preferences back to defaults
    await standin.stop()

    with XnatStandin().run_in_thread() as standin:                         # own loop in a thread; all the
        ...                                                                # methods above are thread-safe

Faults: one fault per `path` glob (None = every path), the most recently set matching fault applies. `latency`
delays the answer; `status` answers with that status and a text body, before authentication (no session opens);
`garbage` runs the real endpoint (auth, sessions) and replaces its body: `html` a login page, `truncated-json`
the first half of the real JSON (never parses), `wrong-types` the real JSON with each value swapped for another
JSON type (bool->"true", number->"2.0", string->[string], null->{}, list->object, object->[[k, v], ...]).
`down` stops listening and cuts open connections, so clients see connection refused; it never changes the port.

Pytest (tests/conftest.py): `xnat_standin` yields a started, empty `XnatStandin` on loopback with ephemeral ports;
`xnat_service_account` adds `jupyterhub` (role JupyterHub) with a random password and returns `(name, password)`.

XNAT's side of the conversation (`hub.standin.plugin`)
------------------------------------------------------
`XnatPlugin(hub_api_url, token, *, verify=True, timeout=10, start_timeout=180, start_poll_interval=8,
stop_timeout=60, stop_poll_interval=2, max_named_servers=1)` makes every call as the real plugin does
(xnat-plugin-client-facts.md): `Authorization: token ...` except on `version()`, names concatenated into paths
unescaped, bodies with their nulls, redirects followed on GET only, JSON answers required, and every user model
checked as the plugin's models parse it (`check_user`: timestamps `yyyy-MM-dd'T'HH:mm:ss[.SSSSSS]X`, `ready` not
null, flat `user_options`), else `HubParseError`. Errors: `HubError` (`.status`; None for transport errors),
`HubTimeout`, `PluginRefusal` (the plugin's own checks). Flows: `launch(user, server, body)` (the start flow, polls
every `start_poll_interval` up to `start_timeout`; returns the ready server), `stop(user, server)` (the stop flow).
Single calls: `version()`, `info()`, `list_users()` (`GET /users`, no pagination header), `get_user(name)`,
`create_user(name)`, `ensure_user(name)`, `start_server(user, server, body)`, `get_server(user, server)`,
`wait_ready(...)`, `create_token(user, *, expires_in=172800, note="XNAT")`, `notebook_url(host, server, token)`,
`stop_server(user, server)`, `wait_gone(...)`, `aclose()`; also an async context manager.
`hub.standin.culler.Culler(plugin, inactivity_timeout=60, max_server_lifetime=48, interval=300)` runs XNAT's
cullers: `run_pass()`, `run_forever()`.

Control API (control port, JSON, no authentication: keep it on loopback)
-----------------------------------------------------------------------
Path segments are URL-quoted names. Bad input answers 400 `{"error": "..."}`; success `{"ok": true}`.

- `GET /_standin/`: `{"xnat_url", "down", "users", "open_sessions"}`
- `GET /_standin/users`: `{name: {"roles": [...], "enabled": bool}}` (never passwords)
- `PUT /_standin/users/{name}` `{"password": str, "roles": [str], "enabled": bool (optional)}`;
  `DELETE /_standin/users/{name}` (404 if absent)
- `GET|PUT|DELETE /_standin/user-options/{user}` (default server) and `/_standin/user-options/{user}/{server}`:
  PUT's body is the document served as is
- `GET /_standin/preferences`; `PUT /_standin/preferences` merges a JSON object
- `GET /_standin/faults`: `{"down": bool, "faults": [...]}`; `PUT /_standin/faults`
  `{"latency", "status", "garbage", "path", "times", "down"}` (as `set_fault`); `DELETE /_standin/faults` clears
  every fault and brings the XNAT port back up
- `GET /_standin/requests` (the log), `DELETE /_standin/requests` (clear it)
- `GET /_standin/sessions`: `{"open": n, "by_user": {name: n}}`
- `POST /_standin/reset`: as `reset()`

Command line
------------
``python -m hub.standin --host 0.0.0.0 --port 8080 --control-port 8081 [--control-host H] [--seed-demo]
[--demo-image IMG] [--tls-cert PEM --tls-key PEM]``. With the TLS pair the XNAT port speaks HTTPS.
`--seed-demo` adds `alice` (Jupyter, password `alice-password`), `Alice.Smith` (Jupyter,
`smith-password`), `bob` (no role, `bob-password`), `admin` (Administrator, `admin-password`) and the service
account `jupyterhub` (role JupyterHub, password from `JH_XNAT_PASSWORD` or `JH_XNAT_PASSWORD_FILE`), and stores
default-server options (image `--demo-image`, no mounts, no reservations so they fit a small machine) for the two
Jupyter users. Nothing secret is printed. SIGTERM or Ctrl-C stops it cleanly (exit 0); a missing service password
or a busy port is a one-line error (exit 2 / 1).
"""

from .options import event_tracking_id, start_request_body, user_options
from .server import StandinUrls, XnatStandin

__all__ = ["StandinUrls", "XnatStandin", "event_tracking_id", "start_request_body", "user_options"]
