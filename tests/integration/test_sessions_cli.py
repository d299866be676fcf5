"""`hitl sessions` bad input: each refusal names the file, the entry or the option, and the fix."""

from __future__ import annotations

import json

DOMAIN = "shop.example.com"
STATE = {"cookies": [{"name": "sid", "value": "s3cr3t", "domain": DOMAIN, "path": "/", "expires": -1,
                      "httpOnly": True, "secure": True, "sameSite": "Lax"}],
         "origins": [{"origin": f"https://{DOMAIN}", "localStorage": [{"name": "token", "value": "t0k3n"}]}]}


def test_import_keeps_localstorage_and_refuses_a_taken_name_unless_replace(cli, tmp_path, state):
    path = tmp_path / "state.json"
    path.write_text(json.dumps(STATE))
    code, out = cli("sessions", "import", DOMAIN, str(path), "--name", "alice")
    assert code == 0, out
    assert "localStorage of 1 origin" in out and "'alice'" in out
    code, out = cli("sessions", "import", DOMAIN, str(path), "--name", "alice")
    assert code == 1 and "already has a session named 'alice'" in out and "--replace" in out
    code, out = cli("sessions", "import", DOMAIN, str(path), "--name", "alice", "--replace")
    assert code == 0, out
    (session,) = state.vault.pool(DOMAIN)
    assert session.origins == tuple(STATE["origins"])
    listed = cli.json("sessions", "list", DOMAIN)
    assert listed[0]["origins"] == [{"origin": f"https://{DOMAIN}", "keys": ["token"]}]
    assert "t0k3n" not in json.dumps(listed) and "s3cr3t" not in json.dumps(listed)


def test_a_bad_origins_entry_is_refused_with_the_file_the_entry_and_the_problem(cli, tmp_path, state):
    path = tmp_path / "broken-state.json"
    path.write_text(json.dumps({**STATE, "origins": [STATE["origins"][0], {"origin": f"https://{DOMAIN}",
                                                                          "localStorage": [{"name": "x"}]}]}))
    code, out = cli("sessions", "import", DOMAIN, str(path))
    assert code == 1
    assert str(path) in out and "origins entry 2" in out and 'string "value"' in out
    assert state.vault.pool(DOMAIN) == []


def test_bad_names_and_probes_are_refused(cli, tmp_path, state):
    path = tmp_path / "state.json"
    path.write_text(json.dumps(STATE))
    code, out = cli("sessions", "import", DOMAIN, str(path), "--name", "no spaces")
    assert code == 1 and "--name" in out
    code, out = cli("sessions", "probe", DOMAIN, f"https://{DOMAIN}/account", "--selector", "div[")
    assert code == 1 and "does not parse" in out
    code, out = cli("sessions", "probe", DOMAIN, "https://elsewhere.test/account")
    assert code == 1 and f"not on {DOMAIN}" in out
    code, out = cli("sessions", "probe", DOMAIN, f"https://{DOMAIN}/account", "--selector", "a.logout")
    assert code == 0 and "shows 'a.logout', checked with a plain HTTP request" in out
    code, out = cli("sessions", "probe", DOMAIN, f"https://{DOMAIN}/account", "--selector", "a.logout", "--browser")
    assert code == 0 and "shows 'a.logout', checked in a browser" in out
    code, out = cli("sessions", "probe", DOMAIN, "--browser")
    assert code == 2 and "--browser needs the URL" in out
    code, out = cli("sessions", "delete", DOMAIN, "--name", "nobody")
    assert code == 1 and "No session named 'nobody'" in out
