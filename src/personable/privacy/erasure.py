"""Erasure that can be proven (GDPR Art. 17, CCPA's right to delete).

One request erases one or more people from everything the project keeps:

1. what names them is gathered (profile ids with those merged into them,
   user and anonymous ids, identities, personal trait values as observed
   and as standardized) and the request is recorded with it: a crash from
   here on resumes, and every step is idempotent;
2. the offline store: every registered table (``personal_data.py``), in one
   transaction; the audit log's records that name them are redacted (their
   digests keep the chain whole);
3. the online store's documents, keys and recommendations;
4. exports kept in the project's export folder (rewritten without them) and
   model artifacts that hold their rows (deleted: a retrain makes them
   again);
5. the event log: the request waits until every record received before it
   is stored and the log has let it go;
6. a certificate -- what was removed where, counts, keyed digests of every
   id and value erased, its own hash -- goes into the audit log and stays
   with the request; the subject is cleared.

``verify`` then scans every store and file for any of the values.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import NotFound, ValidationFailed
from ..identity.identifiers import normalize_identifier
from ..ports.erasure import Subject
from .erasure_files import FileScan, purge_artifacts, purge_exports
from .person_text import PersonText, text_patterns
from .personal_data import PERSONAL, unregistered

if TYPE_CHECKING:
    from ..clock import Clock
    from ..identity.keyed import IdentityHasher
    from ..ports import OnlineStore, ProfileReads
    from ..ports.erasure import ErasureStore
    from .audit import AuditLog
    from .config import PrivacySection

# Waits on the event log, given by the Engine: everything received so far stored (its positions);
# then, given those positions, whether the log has let go of everything before them.
Settle = tuple[Callable[[], Any], Callable[[Any], bool]]
ACTION = "privacy.erase"
PHONE_LIKE = re.compile(r"^\+?[\d\s().-]{7,}$")


class Erasure:
    def __init__(self, settings: "PrivacySection", clock: "Clock", store: "ErasureStore", online: "ProfileReads",
                 materialized: "OnlineStore | None", audit: "AuditLog", resolve: Callable[[str], str | None],
                 hasher: "IdentityHasher", region: str, artifact_dirs: list[Path], export_dir: Path, state_dir: Path):
        self.settings, self.clock, self.store, self.online = settings, clock, store, online
        self.materialized, self.audit, self.resolve, self.region = materialized, audit, resolve, region
        self.hasher = hasher
        self.artifact_dirs, self.export_dir, self.state_dir = artifact_dirs, export_dir, state_dir
        self._one_at_a_time = threading.Lock()     # two requests for one person must not interleave their steps

    def _digest(self, value: str) -> str:
        return str(self.audit.digest("erasure:" + value))

    # -- the request ---------------------------------------------------------------------------
    def erase(self, identifiers: list[str], actor: str, settle: Settle | None = None) -> dict[str, Any]:
        """Erase the people these identifiers name; the certificate of the request (or, when all were
        erased before, what was). Unfinished requests are finished first."""
        if not identifiers or any(not isinstance(i, str) or not i.strip() for i in identifiers):
            raise ValidationFailed("give the ids (or email:, phone:, user_id: ...) of the people to erase")
        with self._one_at_a_time:
            return self._request(identifiers, actor, settle)

    def _request(self, identifiers: list[str], actor: str, settle: Settle | None) -> dict[str, Any]:
        resumed = {rep["erasure_id"]: rep for rep in (self._run(r, settle) for r in self.store.erasures(pending=True))}
        if settle is not None:
            settle[0]()      # what was received before the request is in the store, and erased with it
        found: dict[str, str] = {}
        before: dict[str, dict[str, Any]] = {}
        for identifier in identifiers:
            # The online store may lag the offline one (a projection still to run): either knowing them will do.
            pid = self.resolve(identifier) or self.store.resolve(identifier, self.region, self.hasher)
            if pid is not None:
                found[identifier] = pid
            elif (prior := self._erased_before(identifier, resumed)) is not None:
                before[identifier] = prior
            else:
                raise NotFound(f"no profile for {identifier!r} (and no erasure of it on record)")
        if not found:
            return {**next(iter(before.values())), "already_erased": sorted(before), "resumed": sorted(resumed)}
        subject = self._subject(sorted(set(found.values())), list(found))
        subject.people = len(set(found.values()))
        erasure_id, now = f"er_{uuid.uuid4().hex[:16]}", self.clock.now()
        request = {"erasure_id": erasure_id, "requested_at": now, "requested_by": actor,
                   "subject": subject.as_dict(), "certificate": None, "state": "pending"}
        self.store.open_erasure(erasure_id, now, actor, self._digest(identifiers[0]), json.dumps(subject.as_dict()))
        report = self._run(request, settle)
        return {**report, "already_erased": sorted(before), "resumed": sorted(resumed)}

    def resume(self, settle: Settle | None = None) -> list[dict[str, Any]]:
        """Finish the requests a crash (or a log that would not let go) left unfinished."""
        with self._one_at_a_time:
            return [self._run(r, settle) for r in self.store.erasures(pending=True)]

    def _erased_before(self, identifier: str, resumed: dict[str, dict[str, Any]] | None = None
                       ) -> dict[str, Any] | None:
        """The certificate of the request that erased them, or (``resumed``: requests just run again and
        still unfinished) that is erasing them."""
        wanted = {self._digest(v) for v in self._forms(identifier)}
        for r in self.store.erasures():
            cert = r.get("certificate") or {}
            if r["subject_digest"] in wanted or wanted & set(cert.get("digests", [])):
                if r["state"] == "done":
                    return dict(cert)
                if resumed and r["erasure_id"] in resumed:
                    return resumed[r["erasure_id"]]
        return None

    def _forms(self, identifier: str) -> list[str]:
        """The identifier as typed, without its ``kind:`` prefix, and standardized."""
        forms = {identifier}
        kind, _, rest = identifier.partition(":")
        if rest and kind in ("email", "phone", "user_id", "anonymous_id", "profile"):
            forms.add(rest)
            if kind in ("email", "phone") and (norm := normalize_identifier(kind, rest, self.region,
                                                                             frozenset())) is not None:
                forms.add(norm)
        return sorted(forms)

    def _standard(self, value: str) -> list[tuple[str, str]]:
        """(kind, standardized form) of a value that looks like an email or a phone number."""
        kind = "email" if "@" in value else "phone" if PHONE_LIKE.match(value) else None
        norm = normalize_identifier(kind, value, self.region, frozenset()) if kind else None
        return [(kind, norm)] if kind and norm else []

    def _subject(self, profile_ids: list[str], identifiers: list[str]) -> Subject:
        s = Subject()
        profiles, identities = self.store.person(profile_ids)
        s.profiles = list(profiles)
        keys = [(k, str(v)) for k, v in identities]
        for pid in profile_ids:         # and what the online document knows, should it know more
            doc = self.online.profile(pid, 0) or {}
            s.profiles += doc.get("merged_from", [])
            keys += [(i["kind"], str(i["value"])) for i in doc.get("identities") or []]
        for kind, value in keys:
            s.identities.append(f"{kind}:{value}")
            if kind == "user_id":
                s.users.append(value)
            elif kind == "anonymous_id":
                s.anonymous.append(value)
        values = set(self.store.personal_values(sorted(set(s.profiles)), list(self.settings.pii_traits)))
        for identifier in identifiers:       # what the request named them by, as typed
            values.update(f for f in self._forms(identifier) if ":" not in f)
        contacts: set[str] = set()
        for v in values:                     # emails and phones, standardized too, and as the graph keys them
            for kind, norm in self._standard(v):
                contacts.update((v, norm))
                s.identities.append(f"{kind}:{self.hasher.digest(norm)}")
        s.contacts = sorted(contacts)
        s.values = sorted(values - contacts - set(s.ids()))
        s.profiles, s.users, s.anonymous = (sorted(set(x)) for x in (s.profiles, s.users, s.anonymous))
        s.identities = sorted(set(s.identities))
        return s

    # -- the steps (each idempotent: a resumed request runs them all again) -------------------------
    def _run(self, request: dict[str, Any], settle: Settle | None) -> dict[str, Any]:
        if request.get("state", "pending") == "pending":
            certificate = self._erase(request, settle)
            if certificate["removed"]["event_log"] == "pending":    # the next request (or --resume) finishes it
                return {**certificate, "state": "pending"}
            # The subject goes before the file is rewritten, so that the rewrite leaves no copy of it either.
            self.store.close_erasure(request["erasure_id"], self.clock.now(), json.dumps(certificate), "compacting")
        else:
            certificate = dict(request["certificate"])
        if not self.store.compact():        # an import is under way: the next request finishes it
            return {**certificate, "state": "compacting"}
        certificate["removed"]["store_compacted"] = True
        certificate["hash"] = hashlib.sha256(json.dumps(certificate, sort_keys=True).encode()).hexdigest()
        self.audit.record(certificate["requested_by"], ACTION, f"erasure:{certificate['erasure_id']}", "ok",
                          {k: v for k, v in certificate.items() if k != "digests"})
        self.audit.flush()
        self.store.close_erasure(certificate["erasure_id"], self.clock.now(), json.dumps(certificate), "done")
        return {**certificate, "state": "done"}

    def _erase(self, request: dict[str, Any], settle: Settle | None) -> dict[str, Any]:
        """Steps 2 to 5; the certificate so far. What each step removed is kept with the request as it
        goes, so that a resumed request certifies what the runs before it removed too."""
        subject, eid = Subject(**request["subject"]), request["erasure_id"]
        patterns = text_patterns(subject)
        self.audit.flush()          # records about them still in memory are written, then redacted
        self.store.erase_rows(subject, PERSONAL, patterns, self.audit.redaction, eid)
        done = self._progress(eid)
        done["online_documents"] = done.get("online_documents", 0) + (
            self.materialized.forget(subject.profiles) if self.materialized is not None else 0)
        done["exports"] = done.get("exports", []) + purge_exports(self.export_dir, PersonText(subject))
        done["model_artifacts"] = done.get("model_artifacts", []) + [
            a for folder in self.artifact_dirs for a in purge_artifacts(folder, subject.ids())]
        self.store.note_erasure(eid, json.dumps(done))
        log_clear = settle[1](settle[0]()) if settle is not None else True
        # Calls under way when the rows went (a read naming them) have had their audit records written by
        # now: those are redacted too.
        self.audit.flush()
        self.store.erase_rows(subject, {"audit_log": PERSONAL["audit_log"]}, patterns, self.audit.redaction, eid)
        tables = self._progress(eid).get("tables", {})
        return {
            "erasure_id": eid, "requested_at": _iso(request["requested_at"]),
            "requested_by": request["requested_by"], "erased_at": self.clock.now().isoformat(),
            "people": subject.people,
            "removed": {"tables": dict(sorted(tables.items())), "online_documents": done["online_documents"],
                        "exports": done["exports"], "model_artifacts": done["model_artifacts"],
                        "event_log": "released" if log_clear else "pending", "store_compacted": False},
            "retrain": sorted({Path(a).parent.name for a in done["model_artifacts"]}),
            "digests": sorted({self._digest(v) for v in subject.needles()}),
        }

    def _progress(self, erasure_id: str) -> dict[str, Any]:
        found = self.store.erasures(erasure_id=erasure_id)
        return dict(found[0]["certificate"] or {}) if found else {}

    # -- proof -----------------------------------------------------------------------------------
    def verify(self, values: list[str]) -> dict[str, Any]:
        """Every place any of ``values`` (ids, emails, phones, names) is still held: the offline store's
        every text column, the online store, and every file under the project's state and export folders."""
        if not values or any(not isinstance(v, str) or not v.strip() for v in values):
            raise ValidationFailed("give the values to look for (ids, emails, phones, names)")
        needles, digests = set(), set()
        for v in values:
            for form in self._forms(v):
                needles.add(form)
                for _, norm in self._standard(form):
                    needles.add(norm)
                    digests.update(self.hasher.forms(norm))     # as the identity graph stores it, under any key
        # A typed "kind:value" is sought as the value (and as typed); a digest with its key id as it is.
        sought = sorted({n for n in needles if ":" not in n or n in values} | digests)
        self.audit.flush()          # records still in memory are sought too
        findings = self.store.scan(sought)
        if self.materialized is not None:
            findings += self.materialized.scan(sought)
        scan = FileScan(sought)
        for root in dict.fromkeys([self.state_dir, self.export_dir]):
            findings += scan.tree(root)
        erased = list({c["erasure_id"]: c for v in values if (c := self._erased_before(v)) is not None}.values())
        return {"values": sorted(values), "sought": len(sought), "findings": findings, "clean": not findings,
                "erasures": [{"erasure_id": c["erasure_id"], "erased_at": c["erased_at"], "hash": c["hash"]}
                             for c in erased],
                "unregistered_tables": unregistered(self.store.table_columns())}


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
