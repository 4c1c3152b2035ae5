"""Simulated people: identity, tastes, devices, consent, churn, and the messy way
a CRM writes them down."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from .world import CATEGORIES, Segment

FIRST = ["Ann", "Ben", "Chloé", "David", "Elif", "Farah", "Goran", "Hana", "Ivan", "Julia", "Kenji", "Lena",
         "Mateo", "Nora", "Oskar", "Priya", "Quinn", "Rosa", "Sami", "Tess", "Umar", "Vera", "Wen", "Yusuf", "Zoë",
         "Aisha", "Bruno", "Carmen", "Dmitri", "Emma", "Felix", "Grace", "Hugo", "Ines", "Jonas", "Kira", "Liam",
         "Maya", "Nils", "Olga", "Pablo", "Rania", "Sofia", "Tomás", "Ugo", "Valentina", "Wilhelm", "Xenia", "Yara",
         "Zain", "Amir", "Beatriz", "Cyril", "Daria", "Emil", "Fatima", "Gustav", "Helena", "Isak", "Jana"]
LAST = ["Smith", "García", "Müller", "Okafor", "Rossi", "Nguyen", "Kowalski", "Tanaka", "Silva", "Novak",
        "Haddad", "Johansson", "O'Brien", "Dubois", "Ivanova", "Patel", "Kim", "Costa", "Weber", "Lind",
        "Andersen", "Bianchi", "Chen", "Dimitrov", "Eriksson", "Fischer", "González", "Horvat", "Ibrahim", "Jensen",
        "Kaya", "Lopez", "Moreau", "Nakamura", "Olsen", "Petrov", "Quintero", "Rahman", "Schmidt", "Takahashi",
        "Usman", "Varga", "Wójcik", "Yilmaz", "Zimmermann", "Abbott", "Becker", "Castro", "Dalton", "Evans",
        "Ferreira", "Grant", "Hughes", "Ito", "Jovanović", "Keller", "Laurent", "Mendes", "Nowak", "Ortiz",
        "Price", "Reyes", "Santos", "Turner", "Vogel", "Walsh", "Young", "Ziegler", "Baker", "Collins"]
# (code, city, postcode prefix) per country.
CITIES = {"US": [("San Francisco", "941"), ("Oakland", "946"), ("San Jose", "951")],
          "GB": [("London", "SW1"), ("London", "N1"), ("London", "E2")],
          "DE": [("Berlin", "101"), ("Berlin", "104"), ("Potsdam", "144")],
          "FR": [("Paris", "750"), ("Paris", "751"), ("Versailles", "780")]}
# Values that CRM users type when they have nothing, or share between people.
JUNK_EMAILS = ("test@test.com", "N/A", "none@none.com", "noreply@example.com")
SWITCHBOARD = "+1 415 555 0100"
COUNTRIES = [("US", "United States", "+1", "415"), ("GB", "United Kingdom", "+44", "20"),
             ("DE", "Germany", "+49", "30"), ("FR", "France", "+33", "1")]
PURPOSES = ("email_marketing", "advertising", "analytics")


@dataclass
class Person:
    index: int
    customer_id: str
    segment: Segment
    taste: np.ndarray
    preferred_hour: int
    devices: list[tuple[str, str]]
    first_name: str
    last_name: str
    email: str
    phone_local: str
    country: tuple[str, str, str, str]
    consent: dict[str, bool]
    first_visit_day: int
    churn_day: int | None
    open_rate: float
    birth_date: str = ""
    city: str = ""
    postcode: str = ""
    signed_up_at: datetime | None = None
    orders: int = 0
    abandoned_carts: int = 0
    extra: dict = field(default_factory=dict)

    def signup_traits(self) -> dict:
        return {"email": self.email, "first_name": self.first_name, "last_name": self.last_name,
                "phone": f"{self.country[2]} {self.phone_local}", "country": self.country[0],
                "first_source": "web", "consent": dict(self.consent)}

    def truth(self) -> dict:
        return {
            "customer_id": self.customer_id, "segment": self.segment.name,
            "favourite_category": list(CATEGORIES)[int(np.argmax(self.taste))],
            "preferred_hour": self.preferred_hour, "churned": self.churn_day is not None,
            "churn_day": self.churn_day if self.churn_day is not None else "",
            "signed_up": self.signed_up_at is not None, "orders": self.orders,
            "abandoned_carts": self.abandoned_carts,
            "anonymous_ids": "|".join(a for a, _ in self.devices),
            # Devices the customer logged in on: deterministic stitching can only link these.
            "identified_anonymous_ids": "|".join(self.devices[d][0] for d in sorted(self.extra.get("identified", ()))),
            "email": self.email,
        }


def make_person(rng: np.random.Generator, i: int, segment: Segment, spec) -> Person:
    first, last = FIRST[rng.integers(len(FIRST))], LAST[rng.integers(len(LAST))]
    country = COUNTRIES[int(rng.choice(len(COUNTRIES), p=[0.55, 0.2, 0.15, 0.1]))]
    n_devices = 1 + min(int(rng.poisson(0.6)), 2)
    kinds = ("mobile", "desktop", "tablet")
    devices = [(f"anon-{rng.integers(1 << 62):016x}", kinds[int(rng.choice(3, p=[0.55, 0.38, 0.07]))])
               for _ in range(n_devices)]
    churn = int(rng.geometric(segment.churn_per_day))
    lo, hi = segment.first_visit_span
    first_visit = int(rng.integers(int(spec.days * lo), max(int(spec.days * lo) + 1, int(spec.days * hi))))
    ascii_last = last.replace("ü", "u").replace("í", "i").replace("'", "")
    return Person(
        index=i, customer_id=f"c{i:06d}", segment=segment,
        taste=rng.dirichlet(np.full(len(CATEGORIES), segment.taste_concentration)),
        preferred_hour=int(rng.choice(24, p=_hour_weights())),
        devices=devices, first_name=first, last_name=last,
        email=f"{first.lower().replace('é', 'e').replace('ë', 'e').replace('ö', 'o')}.{ascii_last.lower()}{i}@example.com",
        phone_local=_local_number(rng, country[0]),
        country=country,
        consent={p: bool(rng.random() < q) for p, q in zip(PURPOSES, (0.7, 0.5, 0.85))},
        first_visit_day=first_visit,
        churn_day=first_visit + churn if first_visit + churn < spec.days else None,
        open_rate=float(np.clip(rng.normal(0.35 if segment.name == "loyal_big_spender" else 0.2, 0.08), 0.02, 0.9)),
        birth_date=f"{rng.integers(1950, 2006)}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}",
        **_address(rng, country[0]),
        extra={"junk_email": str(rng.choice(JUNK_EMAILS)) if rng.random() < 0.015 else None,
               "switchboard": bool(rng.random() < 0.01)},
    )


def _address(rng: np.random.Generator, code: str) -> dict:
    city, prefix = CITIES[code][int(rng.integers(len(CITIES[code])))]
    if code == "GB":
        postcode = f"{prefix} {rng.integers(1, 9)}{'ABDEFGHJLNPQRSTUWXYZ'[int(rng.integers(20))]}{'ABDEFGHJLNPQRSTUWXYZ'[int(rng.integers(20))]}"
    else:
        postcode = f"{prefix}{rng.integers(0, 100):02d}"
    return {"city": city, "postcode": postcode}


def _local_number(rng: np.random.Generator, code: str) -> str:
    """A valid number in the country's national significant form (no trunk prefix)."""
    if code == "US":
        return f"415 {rng.integers(200, 999)} {rng.integers(1000, 9999)}"
    if code == "GB":
        return f"20 7{rng.integers(100, 999)} {rng.integers(1000, 9999)}"
    if code == "DE":
        return f"30 {rng.integers(1000, 9999)} {rng.integers(1000, 9999)}"
    return f"1 {rng.integers(10, 99)} {rng.integers(10, 99)} {rng.integers(10, 99)} {rng.integers(10, 99)}"


def _hour_weights() -> np.ndarray:
    hours = np.arange(24)
    w = 0.2 + np.exp(-((hours - 8) ** 2) / 4) + 1.5 * np.exp(-((hours - 20) ** 2) / 6) + 0.6 * np.exp(-((hours - 13) ** 2) / 3)
    return w / w.sum()


def _typo(rng: np.random.Generator, text: str) -> str:
    if len(text) < 3:
        return text
    k = int(rng.integers(1, len(text) - 1))
    return text[:k - 1] + text[k] + text[k - 1] + text[k + 1:]


def messy_crm_row(rng: np.random.Generator, p: Person, variant: int) -> dict:
    """The CRM's version of a person: format variations always, typos in duplicates."""
    email = p.email
    if rng.random() < 0.3:
        email = email.upper() if rng.random() < 0.5 else f"  {email.capitalize()} "
    code, name, dial, _ = p.country
    digits = p.phone_local.replace(" ", "")
    # International, compact international, and the national way of writing it
    # (a trunk 0 in Europe, (415) 555-0123 in the US): only the country says which.
    national = f"({digits[:3]}) {digits[3:6]}-{digits[6:]}" if code == "US" else f"0{digits}"
    phone = [f"{dial} {p.phone_local}", f"{dial}{digits}", national, national][int(rng.integers(4))]
    country = [code, name, name.upper(), code.lower()][int(rng.integers(4))]
    first, last = p.first_name, p.last_name
    if variant > 0:
        if rng.random() < 0.5:
            first = _typo(rng, first)
        if rng.random() < 0.5:
            last = _typo(rng, last)
        if rng.random() < 0.4:
            email = ""  # the duplicate was keyed in without an email
    signup = p.signed_up_at
    date_formats = ["%Y-%m-%d", "%d/%m/%Y", "%m-%d-%Y", "%Y-%m-%dT%H:%M:%SZ"]
    born = datetime.strptime(p.birth_date, "%Y-%m-%d")
    birth = born.strftime(date_formats[int(rng.integers(3))])
    postcode, city = p.postcode, p.city
    if variant > 0:
        if rng.random() < 0.15:
            birth = ""
        if rng.random() < 0.15:
            postcode = _typo(rng, postcode.replace(" ", ""))
        if rng.random() < 0.3:
            city = city.upper()
    if p.extra.get("junk_email"):
        email = p.extra["junk_email"]
    if p.extra.get("switchboard"):
        phone = SWITCHBOARD  # the company's number, given by several employees
    return {
        "customer_id": p.customer_id if variant == 0 or rng.random() < 0.5 else "",
        "email": email, "phone": phone, "first_name": first if rng.random() > 0.1 else first.upper(),
        "last_name": last, "birth_date": birth, "city": city, "postcode": postcode, "country": country,
        "signup_date": signup.strftime(date_formats[int(rng.integers(4))]) if signup else "",
        "updated_at": signup.strftime("%Y-%m-%dT%H:%M:%SZ") if signup else "",
    }
