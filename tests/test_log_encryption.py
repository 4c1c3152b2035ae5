"""The durable event log encrypted at rest (issue: privacy and security,
point 2): AES-GCM under a data key per segment, kept beside it wrapped by the
project's key-encryption key; offsets, release and a follower in another
process work as before; a log of plain records from before reads on; a
process without the key is told so -- and a real server's log holds no
readable event."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from conftest import start_server, stop_server
from personable.adapters.filelog import FileLog, FollowedLog
from personable.config import write_starter
from personable.errors import StoreError
from personable.privacy.kek import LocalKek, project_kek
from personable.privacy.log_cipher import LogCipher

EMAIL = b"ann.secret@example.com"


def _cipher(secret: bytes = b"k" * 32, kid: str = "kek1") -> LogCipher:
    return LogCipher(lambda: LocalKek([(kid, secret)]))


def _all(log) -> list[bytes]:
    got, positions = [], {}
    while True:
        batch, positions = log.read(positions, 3)
        if not batch:
            return got
        got += batch


def test_records_are_sealed_per_segment_and_read_back(tmp_path):
    folder = tmp_path / "log"
    log = FileLog(folder, segment_bytes=200, cipher=_cipher())
    records = [json.dumps({"n": i, "email": EMAIL.decode()}).encode() for i in range(12)]
    for r in records:
        log.append([r])
    assert _all(log) == records
    stored = b"".join(p.read_bytes() for p in folder.glob("*.log"))
    assert EMAIL not in stored and stored.count(b"\n") == 12 and stored.startswith(b"~")
    keys = sorted(folder.glob("*.key"))
    assert len(keys) == len(list(folder.glob("*.log"))) > 1            # one data key per segment
    assert all(stat.S_IMODE(os.stat(k).st_mode) == 0o600 for k in keys)
    assert all(EMAIL not in k.read_bytes() for k in keys)
    follower = FollowedLog(folder, log.end(), cipher=_cipher())         # another process, the same project key
    assert _all(follower) == records
    log.release(log.end())
    assert len(list(folder.glob("*.key"))) == len(list(folder.glob("*.log"))) == 1   # a released segment's key goes
    log.close()


def test_one_append_is_one_sealed_line_read_back_whole(tmp_path):
    log = FileLog(tmp_path / "log", cipher=_cipher())
    log.append([b"a1", b"a2", b"a3", b"a4"])
    log.append([b"b1"])
    batch, positions = log.read({}, 2)          # the first append's line is taken whole
    assert batch == [b"a1", b"a2", b"a3", b"a4"]
    rest, end = log.read(positions, 2)
    assert rest == [b"b1"] and end == log.end()
    assert (tmp_path / "log" / f"{0:020d}.log").read_bytes().count(b"\n") == 2
    log.close()


def test_a_process_without_the_project_key_is_told_so(tmp_path):
    log = FileLog(tmp_path / "log", cipher=_cipher())
    log.append([EMAIL])
    with pytest.raises(StoreError, match="no key-encryption key"):
        _all(FollowedLog(tmp_path / "log", log.end(), cipher=None))
    with pytest.raises(StoreError, match="kek1"):                       # another project's key opens nothing
        _all(FollowedLog(tmp_path / "log", log.end(), cipher=_cipher(b"o" * 32, "kek9")))
    with pytest.raises(StoreError, match="does not open"):              # the same id, another secret
        _all(FollowedLog(tmp_path / "log", log.end(), cipher=_cipher(b"o" * 32)))
    log.close()


def test_a_tampered_log_is_refused_not_read(tmp_path):
    folder = tmp_path / "log"
    log = FileLog(folder, cipher=_cipher())
    log.append([b'{"n": 1}'])
    log.append([b'{"n": 2}'])
    log.close()
    segment = folder / f"{0:020d}.log"
    first, second, _ = segment.read_bytes().split(b"\n")
    # Lines swapped (each still a valid sealed line): bound to their offsets, they do not open.
    segment.write_bytes(second + b"\n" + first + b"\n")
    with pytest.raises(StoreError, match="does not open"):
        _all(FollowedLog(folder, {0: segment.stat().st_size}, cipher=_cipher()))
    # A plain record slipped in after sealing began (it would be stored unvalidated): refused.
    segment.write_bytes(first + b"\n" + second + b"\n" + b'{"injected": true}\n')
    with pytest.raises(StoreError, match="plain text"):
        _all(FollowedLog(folder, {0: segment.stat().st_size}, cipher=_cipher()))
    # The key lost: the writer refuses to make a new one for a segment that holds sealed records.
    segment.write_bytes(first + b"\n" + second + b"\n")
    (folder / f"{0:020d}.key").unlink()
    with pytest.raises(StoreError, match="key of an encrypted log segment is missing"):
        FileLog(folder, cipher=_cipher())


def test_turning_encryption_off_still_reads_what_was_sealed(tmp_path):
    folder = tmp_path / "log"
    sealed = FileLog(folder, cipher=_cipher())
    sealed.append([b"sealed-1"])
    sealed.close()
    plain = FileLog(folder, cipher=_cipher(), seal=False)
    plain.append([b"plain-2"])
    assert _all(plain) == [b"sealed-1", b"plain-2"]
    plain.close()


def test_a_log_of_plain_records_reads_on_once_encrypted(tmp_path):
    folder = tmp_path / "log"
    plain = FileLog(folder)
    plain.append([b'{"old": 1}'])
    plain.close()
    sealed = FileLog(folder, cipher=_cipher())
    sealed.append([b'{"new": 2}'])
    assert _all(sealed) == [b'{"old": 1}', b'{"new": 2}']
    assert (folder / f"{0:020d}.log").read_bytes().splitlines()[0] == b'{"old": 1}'
    sealed.close()


def test_the_project_key_comes_from_keys_json_or_the_environment(tmp_path, monkeypatch):
    kek = project_kek(tmp_path)
    key, wrapped = kek.generate_data_key()
    assert project_kek(tmp_path).decrypt_data_key(wrapped) == key        # made once, read again
    assert json.loads((tmp_path / "keys.json").read_text())["kek"][0]["id"] == "kek1"
    monkeypatch.setenv("PERSONABLE_KEK", json.dumps([{"id": "env1", "secret": base64.b64encode(b"e" * 32).decode()}]))
    env = project_kek(tmp_path)
    assert env.decrypt_data_key(env.generate_data_key()[1])
    with pytest.raises(ValueError, match="kek1"):
        env.decrypt_data_key(wrapped)


def test_a_running_server_keeps_no_readable_event_in_its_log(tmp_path):
    project = tmp_path / "proj"
    write_starter(project, "sealed-shop")
    server = start_server(project)
    try:
        with server.client() as c:
            for i in range(5):
                r = c.post("/v1/identify", auth=(server.write_key, ""),
                           json={"userId": f"u{i}", "traits": {"email": f"{i}.{EMAIL.decode()}"}})
                assert r.status_code == 200
            held = b"".join(p.read_bytes() for p in (project / ".personable" / "bus").glob("*.log"))
            assert EMAIL not in held
            doc = c.get("/v1/profiles/u4", headers=server.admin, params={"fresh": "true"})
            assert doc.status_code == 200 and doc.json()["traits"]["email"] == f"4.{EMAIL.decode()}"
    finally:
        stop_server(server)
