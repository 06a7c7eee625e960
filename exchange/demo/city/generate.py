"""The demo city's seeded data generator.

`generate_resources` builds every source resource's rows in memory (pure: same seed, same rows);
`generate_city` writes them where a workspace's resources say they live and returns the
`DefectManifest`. People are shared across resources (the legal representative of a company, an
insured worker, a 低保 applicant and a mother are all residents in PSB-RES-001), so cross-resource
joins in the demo find each other.

Defects are planted on purpose, on disjoint rows, in the exact fractions of `DEFECT_PLAN`
(count = round(rows * fraction)); every other row passes every check in its contract. The plan is
documented in exchange/demo/workspace/README.md; keep both in step.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faker import Faker

from exchange.demo.city.identifiers import (
    CITY_NAME,
    CITY_PROVINCE,
    DISTRICTS,
    make_resident_id,
    make_uscc,
    pick_id_area,
)
from exchange.demo.city.manifest import (
    DefectManifest,
    GeneratedResource,
    PlantedDefect,
)
from exchange.demo.city.writers import plan_sources, write_sources
from quality.standards import (
    RESIDENT_ID_CHECK_CHARS,
    USCC_ALPHABET,
    is_valid_cn_mobile_phone,
    uscc_check_char,
)

__all__ = [
    "BASE_ROWS",
    "DEFAULT_SEED",
    "DEFECT_PLAN",
    "REFERENCE_DATE",
    "DefectSpec",
    "GeneratedResource",
    "generate_city",
    "generate_resources",
    "tax_credit_messages",
    "tax_credit_records",
]

DEFAULT_SEED = 20261127
#: The demo's "today": every generated date is before it, so data does not depend on the clock.
REFERENCE_DATE = dt.date(2026, 11, 27)
_UPDATED_FROM = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
_UPDATED_SPAN_S = int((dt.datetime(2026, 11, 26, tzinfo=dt.UTC) - _UPDATED_FROM).total_seconds())

#: Rows per resource at scale 1.0 (`scale` multiplies; never fewer than MIN_ROWS).
BASE_ROWS: Mapping[str, int] = {
    "PSB-RES-001": 3000,
    "AMR-RES-001": 2000,
    "HRSS-RES-001": 3000,
    "CIVIL-RES-001": 1200,
    "HEALTH-RES-001": 800,
    "HEALTH-RES-002": 200,
}
MIN_ROWS = 20
TAX_RESOURCE = "TAX-RES-001"


@dataclass(frozen=True)
class DefectSpec:
    """Plant `round(rows * fraction)` defects of one kind in `column`, for `check` to catch."""

    check: str
    column: str
    fraction: float
    kind: str
    schema_visible: bool


#: What is planted where. Fractions are of the resource's rows; each defective row has exactly
#: one defect, so a resource's defect rate is the sum of its fractions (kept well below its
#: `quality.max_error_rate`, so that no batch of the demo is blocked by chance).
DEFECT_PLAN: Mapping[str, tuple[DefectSpec, ...]] = {
    "PSB-RES-001": (
        DefectSpec("cn_resident_id", "id_no", 0.02, "id_check", False),
        DefectSpec("id_birth_date_consistency", "birth_date", 0.01, "birth_shift", False),
        DefectSpec("id_gender_consistency", "gender", 0.005, "gender_flip", False),
        DefectSpec("cn_mobile_phone", "phone", 0.01, "bad_phone", True),
        DefectSpec("required", "name", 0.002, "null", True),
    ),
    "AMR-RES-001": (
        DefectSpec("cn_uscc", "uscc", 0.015, "uscc_check", False),
        DefectSpec("cn_uscc", "uscc", 0.005, "org_code_check", False),
        DefectSpec("cn_resident_id", "legal_rep_id_no", 0.01, "id_check", False),
        DefectSpec("enum", "status", 0.0025, "bad_enum", True),
    ),
    "HRSS-RES-001": (
        DefectSpec("cn_resident_id", "id_no", 0.01, "id_check", False),
        DefectSpec("cn_uscc", "employer_uscc", 0.01, "uscc_check", False),
        DefectSpec("cn_mobile_phone", "phone", 0.01, "bad_phone", True),
        DefectSpec("pattern", "start_month", 0.005, "bad_month", True),
        DefectSpec("required", "employer_name", 0.002, "null", True),
    ),
    "CIVIL-RES-001": (
        DefectSpec("cn_resident_id", "id_no", 0.015, "id_check", False),
        DefectSpec("pattern", "area_code", 0.005, "bad_area", True),
        DefectSpec("minimum", "monthly_allowance", 0.005, "negative", True),
    ),
    "HEALTH-RES-001": (
        DefectSpec("cn_resident_id", "mother_id_no", 0.015, "id_check", False),
        DefectSpec("required", "mother_name", 0.005, "null", True),
    ),
    "HEALTH-RES-002": (),
    TAX_RESOURCE: (
        DefectSpec("cn_uscc", "uscc", 0.01, "uscc_check", False),
        DefectSpec("enum", "credit_level", 0.005, "bad_enum", True),
    ),
}


# ---------------------------------------------------------------------------------------------
# people and entities shared across resources
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Person:
    id_no: str
    name: str
    surname: str
    male: bool
    birth_date: dt.date
    ethnicity: str
    phone: str | None
    address: str
    area_code: str  # household registration district (always in the city)

    def age_on(self, day: dt.date) -> int:
        b = self.birth_date
        return day.year - b.year - ((day.month, day.day) < (b.month, b.day))


_ETHNIC_MINORITIES = ("畲族", "回族", "满族", "壮族", "苗族", "土家族", "蒙古族", "高山族")
_HOSPITALS = (
    "福建省妇幼保健院",
    "福建省立医院",
    "福建医科大学附属第一医院",
    "福州市第一医院",
    "福州市妇幼保健院",
    "闽侯县总医院",
    "福清市医院",
    "长乐区人民医院",
)
_SHOPS = ("小吃店", "便利店", "五金店", "理发店", "水果店", "服装店", "茶叶店", "家电维修部")
_COOPS = ("茶叶种植专业合作社", "水产养殖专业合作社", "蔬菜种植专业合作社", "食用菌专业合作社")
_DIAGNOSES = ("F20", "F20.0", "F20.3", "F25", "F31", "F31.2", "F32.3", "F06.2", "F70", "F71")


def _sub_seed(seed: int, label: str) -> int:
    """A stable 64-bit seed per (seed, label), independent of Python's hash randomisation."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{label}".encode()).digest()[:8], "big")


def _rng(seed: int, label: str) -> random.Random:
    return random.Random(_sub_seed(seed, label))  # noqa: S311 - synthetic data, not security


def _faker(seed: int, label: str) -> Faker:
    fake = Faker("zh_CN")
    fake.seed_instance(_sub_seed(seed, label))
    return fake


def _day_between(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    return start + dt.timedelta(days=rng.randint(0, (end - start).days))


def _updated_at(rng: random.Random) -> dt.datetime:
    return _UPDATED_FROM + dt.timedelta(seconds=rng.randrange(_UPDATED_SPAN_S))


def _address(rng: random.Random, fake: Faker, area: str) -> str:
    number, block = rng.randint(1, 399), rng.randint(1, 30)
    room = rng.randint(1, 28) * 100 + rng.randint(1, 8)
    street = fake.street_name()
    return f"{CITY_PROVINCE}{CITY_NAME}{DISTRICTS[area]}{street}{number}号{block}栋{room}室"


def _phone(fake: Faker) -> str:
    while True:
        phone = fake.phone_number()
        if is_valid_cn_mobile_phone(phone):
            return phone


def _population(seed: int, n: int) -> list[_Person]:
    rng, fake = _rng(seed, "population"), _faker(seed, "population")
    seen: set[str] = set()
    people: list[_Person] = []
    oldest = REFERENCE_DATE.replace(year=REFERENCE_DATE.year - 95)
    youngest = REFERENCE_DATE - dt.timedelta(days=30)
    while len(people) < n:
        male = rng.random() < 0.51
        birth = _day_between(rng, oldest, youngest)
        id_no = make_resident_id(rng, pick_id_area(rng), birth, male)
        if id_no in seen:
            continue
        seen.add(id_no)
        surname = fake.last_name()
        given = fake.first_name_male() if male else fake.first_name_female()
        # Most people still live where their ID number was issued.
        area = id_no[:6] if id_no[:6] in DISTRICTS and rng.random() < 0.7 else None
        area = area or rng.choice(sorted(DISTRICTS))
        people.append(
            _Person(
                id_no=id_no,
                name=surname + given,
                surname=surname,
                male=male,
                birth_date=birth,
                ethnicity="汉族" if rng.random() < 0.95 else rng.choice(_ETHNIC_MINORITIES),
                phone=_phone(fake) if birth.year <= 2012 and rng.random() < 0.92 else None,
                address=_address(rng, fake, area),
                area_code=area,
            )
        )
    return people


# ---------------------------------------------------------------------------------------------
# clean rows, one function per resource
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _City:
    seed: int
    people: list[_Person]
    adults: list[_Person]
    entities: list[dict[str, Any]]  # clean AMR rows


def _rows_psb(city: _City, n: int) -> list[dict[str, Any]]:
    rng = _rng(city.seed, "PSB-RES-001")
    return [
        {
            "id_no": p.id_no,
            "name": p.name,
            "gender": "男" if p.male else "女",
            "birth_date": p.birth_date,
            "ethnicity": p.ethnicity,
            "phone": p.phone,
            "address": p.address,
            "household_area_code": p.area_code,
            "updated_at": _updated_at(rng),
        }
        for p in city.people[:n]
    ]


_ENTITY_TYPES = (
    # (type, share, authority+type chars of the credit code)
    ("有限责任公司", 0.55, "91"),
    ("股份有限公司", 0.04, "91"),
    ("个人独资企业", 0.06, "91"),
    ("合伙企业", 0.05, "91"),
    ("个体工商户", 0.27, "92"),
    ("农民专业合作社", 0.03, "93"),
)
_STATUSES = (("存续", 0.62), ("在业", 0.24), ("吊销", 0.04), ("注销", 0.08), ("迁出", 0.02))


def _weighted(rng: random.Random, options: Sequence[tuple[str, float]]) -> str:
    names = [name for name, _ in options]
    weights = [weight for _, weight in options]
    return rng.choices(names, weights=weights)[0]


def _rows_amr(seed: int, adults: list[_Person], n: int) -> list[dict[str, Any]]:
    rng, fake = _rng(seed, "AMR-RES-001"), _faker(seed, "AMR-RES-001")
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    while len(rows) < n:
        etype, _, prefix = rng.choices(_ENTITY_TYPES, weights=[t[1] for t in _ENTITY_TYPES])[0]
        area = rng.choice(sorted(DISTRICTS))
        uscc = make_uscc(rng, prefix, area)
        if uscc in seen:
            continue
        seen.add(uscc)
        rep = rng.choice(adults)
        district = DISTRICTS[area]
        if etype == "个体工商户":
            name = f"{CITY_NAME}{district}{rep.surname}{fake.first_name()}{rng.choice(_SHOPS)}"
            capital = None
        elif etype == "农民专业合作社":
            name = f"{CITY_NAME}{district}{fake.last_name()}家{rng.choice(_COOPS)}"
            capital = float(rng.choice((10, 20, 50, 100)))
        else:
            name = fake.company()
            capital = float(rng.choice((3, 10, 30, 50, 100, 200, 500, 1000, 5000, 20000)))
        rows.append(
            {
                "uscc": uscc,
                "entity_name": name,
                "entity_type": etype,
                "legal_rep_name": rep.name,
                "legal_rep_id_no": rep.id_no,
                "registered_capital": capital,
                "established_on": _day_between(rng, dt.date(1995, 1, 1), dt.date(2026, 10, 31)),
                "address": _address(rng, fake, area),
                "area_code": area,
                "status": _weighted(rng, _STATUSES),
                "updated_at": _updated_at(rng),
            }
        )
    return rows


_INSURANCE_TYPES = ("企业职工基本养老保险", "职工基本医疗保险", "失业保险", "工伤保险")


def _rows_hrss(city: _City, n: int) -> list[dict[str, Any]]:
    rng = _rng(city.seed, "HRSS-RES-001")
    employers = [
        e
        for e in city.entities
        if e["entity_type"] != "个体工商户" and e["status"] in ("存续", "在业")
    ] or city.entities
    workers = [p for p in city.adults if p.age_on(REFERENCE_DATE) < 65]
    rng.shuffle(workers)
    rows: list[dict[str, Any]] = []
    for p in workers:
        employer = rng.choice(employers)
        first = max(dt.date(1995, 1, 1), p.birth_date.replace(year=p.birth_date.year + 18, day=1))
        if first > dt.date(2026, 10, 1):
            continue
        base = round(rng.uniform(4100.0, 28000.0), 2)
        status = _weighted(rng, (("参保缴费", 0.85), ("暂停缴费", 0.08), ("终止参保", 0.07)))
        for itype in rng.sample(_INSURANCE_TYPES, rng.randint(2, 4)):
            start = _day_between(rng, first, dt.date(2026, 10, 1))
            rows.append(
                {
                    "id_no": p.id_no,
                    "insurance_type": itype,
                    "name": p.name,
                    "employer_uscc": employer["uscc"],
                    "employer_name": employer["entity_name"],
                    "status": status,
                    "start_month": f"{start:%Y-%m}",
                    "monthly_base": base,
                    "phone": p.phone,
                    "updated_at": _updated_at(rng),
                }
            )
            if len(rows) == n:
                return rows
    return rows


def _rows_civil(city: _City, n: int) -> list[dict[str, Any]]:
    rng = _rng(city.seed, "CIVIL-RES-001")
    applicants = rng.sample(city.adults, min(n, len(city.adults)))
    rows: list[dict[str, Any]] = []
    for i, p in enumerate(applicants, start=1):
        start = _day_between(rng, dt.date(2015, 1, 1), dt.date(2026, 10, 31))
        size = rng.choices((1, 2, 3, 4, 5, 6), weights=(30, 25, 20, 15, 7, 3))[0]
        rows.append(
            {
                "case_no": f"DB{p.area_code}{start.year}{i:05d}",
                "id_no": p.id_no,
                "name": p.name,
                "household_size": size,
                # 低保 standard: about 900 yuan per person per month, minus assessed income.
                "monthly_allowance": round(size * 900 * rng.uniform(0.3, 1.0), 2),
                "area_code": p.area_code,
                "address": p.address,
                "start_date": start,
                "status": "在保" if rng.random() < 0.88 else "停保",
                "updated_at": _updated_at(rng),
            }
        )
    return rows


def _rows_birth(city: _City, n: int) -> list[dict[str, Any]]:
    rng, fake = _rng(city.seed, "HEALTH-RES-001"), _faker(city.seed, "HEALTH-RES-001")
    women = [p for p in city.adults if not p.male and 20 <= p.age_on(REFERENCE_DATE) <= 48]
    men = [p for p in city.adults if p.male and 22 <= p.age_on(REFERENCE_DATE) <= 55]
    mothers = women or [p for p in city.adults if not p.male] or city.adults
    fathers = men or city.adults
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    while len(rows) < n:
        cert = f"Q{rng.randrange(10**9):09d}"
        if cert in seen:
            continue
        seen.add(cert)
        mother = rng.choice(mothers)
        father = rng.choice(fathers) if rng.random() < 0.9 else None
        boy = rng.random() < 0.52
        surname = father.surname if father else mother.surname
        rows.append(
            {
                "birth_cert_no": cert,
                "child_name": surname
                + (fake.first_name_male() if boy else fake.first_name_female()),
                "child_gender": "男" if boy else "女",
                "birth_date": _day_between(rng, dt.date(2024, 1, 1), dt.date(2026, 11, 20)),
                "birth_place": rng.choice(_HOSPITALS),
                "mother_name": mother.name,
                "mother_id_no": mother.id_no,
                "father_name": father.name if father else None,
                "father_id_no": father.id_no if father else None,
                "updated_at": _updated_at(rng),
            }
        )
    return rows


def _rows_mental(city: _City, n: int) -> list[dict[str, Any]]:
    rng = _rng(city.seed, "HEALTH-RES-002")
    patients = rng.sample(city.adults, min(n, len(city.adults)))
    ids = rng.sample(range(10**8), len(patients))
    return [
        {
            "patient_id": f"SMD{pid:08d}",
            "id_no": p.id_no,
            "name": p.name,
            "diagnosis_code": rng.choice(_DIAGNOSES),
            "risk_level": rng.choices(range(6), weights=(40, 30, 15, 8, 5, 2))[0],
            "managed_by": f"{DISTRICTS[p.area_code]}社区卫生服务中心",
            "updated_at": _updated_at(rng),
        }
        for p, pid in zip(patients, ids, strict=True)
    ]


_KEYS: Mapping[str, tuple[str, ...]] = {
    "PSB-RES-001": ("id_no",),
    "AMR-RES-001": ("uscc",),
    "HRSS-RES-001": ("id_no", "insurance_type"),
    "CIVIL-RES-001": ("case_no",),
    "HEALTH-RES-001": ("birth_cert_no",),
    "HEALTH-RES-002": ("patient_id",),
    TAX_RESOURCE: ("uscc",),
}
_BUILDERS: Mapping[str, Callable[[_City, int], list[dict[str, Any]]]] = {
    "PSB-RES-001": _rows_psb,
    "AMR-RES-001": lambda city, n: city.entities[:n],
    "HRSS-RES-001": _rows_hrss,
    "CIVIL-RES-001": _rows_civil,
    "HEALTH-RES-001": _rows_birth,
    "HEALTH-RES-002": _rows_mental,
}
#: Resources `generate_resources` can build (the Kafka-fed TAX-RES-001 has its own functions).
GENERATED_RESOURCES: tuple[str, ...] = tuple(_BUILDERS)


# ---------------------------------------------------------------------------------------------
# defects
# ---------------------------------------------------------------------------------------------


def _other_char(rng: random.Random, alphabet: str, current: str) -> str:
    return rng.choice([c for c in alphabet if c != current])


def _mutate(rng: random.Random, row: dict[str, Any], column: str, kind: str) -> str:
    """Plant one defect of `kind` in row[column]; return a description of what was done."""
    old = row[column]
    if kind == "id_check":
        row[column] = old[:17] + _other_char(rng, RESIDENT_ID_CHECK_CHARS, old[17])
        return f"check character {old[17]} replaced by {row[column][17]}"
    if kind == "uscc_check":
        row[column] = old[:17] + _other_char(rng, USCC_ALPHABET, old[17])
        return f"check character {old[17]} replaced by {row[column][17]}"
    if kind == "org_code_check":
        body = old[:16] + _other_char(rng, "0123456789X", old[16])
        row[column] = body + uscc_check_char(body)
        return (
            f"organisation code check character {old[16]} replaced by {body[16]}; "
            "the credit code's own check character was recomputed to match"
        )
    if kind == "birth_shift":
        days = rng.randint(1, 400)
        row[column] = old - dt.timedelta(days=days)
        return f"birth date {days} days earlier than the one in the ID number"
    if kind == "gender_flip":
        row[column] = "女" if old == "男" else "男"
        return f"gender {row[column]} contradicts the ID number's sequence digit"
    if kind == "bad_phone":
        good = old or "13800138000"
        row[column] = rng.choice(
            (good[:10], good + "8", "12" + good[2:], f"{good[:3]}-{good[3:7]}-{good[7:]}")
        )
        return f"malformed mobile number {row[column]}"
    if kind == "null":
        row[column] = None
        return "required field is null"
    if kind == "bad_enum":
        row[column] = "正常" if column == "status" else "E"
        return f"value {row[column]} is not in the contract's enum"
    if kind == "bad_month":
        row[column] = rng.choice((f"{old[:4]}-13", f"{old[:4]}-00", old.replace("-", "")))
        return f"start month {row[column]} does not match YYYY-MM"
    if kind == "bad_area":
        row[column] = old[:5]
        return f"division code {row[column]} is not 6 digits"
    if kind == "negative":
        row[column] = -abs(old) or -1.0
        return "allowance is negative"
    msg = f"unknown defect kind {kind!r}"
    raise ValueError(msg)


def _plant(
    seed: int, code: str, key: tuple[str, ...], rows: list[dict[str, Any]]
) -> tuple[PlantedDefect, ...]:
    plan = DEFECT_PLAN.get(code, ())
    rng = _rng(seed, f"{code}:defects")
    counts = [round(len(rows) * spec.fraction) for spec in plan]
    chosen = rng.sample(range(len(rows)), sum(counts))
    keys = {tuple(r[k] for k in key) for r in rows}
    defects: list[PlantedDefect] = []
    start = 0
    for spec, count in zip(plan, counts, strict=True):
        for i in sorted(chosen[start : start + count]):
            row = rows[i]
            before = tuple(row[k] for k in key)
            for _ in range(20):  # a mutated key must stay unique: retry on a (rare) collision
                candidate = dict(row)
                description = _mutate(rng, candidate, spec.column, spec.kind)
                after = tuple(candidate[k] for k in key)
                if after == before or after not in keys:
                    break
            else:
                msg = f"{code}: could not plant a unique {spec.kind} defect in row {i}"
                raise RuntimeError(msg)
            keys.discard(before)
            keys.add(after)
            row.update(candidate)
            value = row[spec.column]
            defects.append(
                PlantedDefect(
                    key=",".join(str(row[k]) for k in key),
                    column=spec.column,
                    check=spec.check,
                    value=None if value is None else str(value),
                    schema_visible=spec.schema_visible,
                    description=description,
                )
            )
        start += count
    return tuple(defects)


# ---------------------------------------------------------------------------------------------
# public entry points
# ---------------------------------------------------------------------------------------------


def rows_for(code: str, scale: float) -> int:
    """How many rows resource `code` gets at `scale`."""
    return max(MIN_ROWS, round(BASE_ROWS[code] * scale))


def _city(seed: int, scale: float) -> _City:
    # PSB-RES-001 is the first rows_for(PSB) people; tiny scales still need enough adults to
    # give every other resource its MIN_ROWS distinct people.
    people = _population(seed, max(rows_for("PSB-RES-001", scale), 3 * MIN_ROWS))
    adults = [p for p in people if p.age_on(REFERENCE_DATE) >= 18]
    entities = _rows_amr(seed, adults, rows_for("AMR-RES-001", scale))
    return _City(seed=seed, people=people, adults=adults, entities=entities)


def generate_resources(
    *, seed: int = DEFAULT_SEED, scale: float = 1.0, codes: Iterable[str] | None = None
) -> dict[str, GeneratedResource]:
    """Build the rows of the demo's source resources (all of `GENERATED_RESOURCES` unless
    `codes` narrows them), defects planted. Pure and deterministic in (seed, scale)."""
    if scale <= 0:
        msg = f"scale must be positive, got {scale}"
        raise ValueError(msg)
    wanted = list(GENERATED_RESOURCES if codes is None else codes)
    unknown = sorted(set(wanted) - set(GENERATED_RESOURCES))
    if unknown:
        msg = f"the demo generator has no data for {', '.join(unknown)}"
        raise ValueError(msg)
    city = _city(seed, scale)
    built = {code: _BUILDERS[code](city, rows_for(code, scale)) for code in GENERATED_RESOURCES}
    out: dict[str, GeneratedResource] = {}
    for code in wanted:
        rows = [dict(r) for r in built[code]]  # planting must not touch rows other builders share
        defects = _plant(seed, code, _KEYS[code], rows)
        out[code] = GeneratedResource(code=code, key=_KEYS[code], rows=rows, defects=defects)
    return out


def tax_credit_records(seed: int = DEFAULT_SEED, n: int | None = None) -> GeneratedResource:
    """TAX-RES-001's records (the `data` of the Kafka envelopes): the latest rating of up to `n`
    active enterprises of the city (all of them when n is None), defects planted per DEFECT_PLAN.
    Uses the scale-1 city, so the credit codes are those of AMR-RES-001 at scale 1.0."""
    city = _city(seed, 1.0)
    rng = _rng(seed, TAX_RESOURCE)
    taxpayers = [
        e
        for e in city.entities
        if e["entity_type"] != "个体工商户" and e["status"] in ("存续", "在业")
    ]
    if n is not None:
        taxpayers = taxpayers[:n]
    levels = (("A", 0.15), ("B", 0.5), ("M", 0.25), ("C", 0.07), ("D", 0.03))
    rows = [
        {
            "uscc": e["uscc"],
            "taxpayer_name": e["entity_name"],
            "credit_level": _weighted(rng, levels),
            "evaluation_year": 2025,
            # Ratings for a year are published in April of the next.
            "evaluated_on": _day_between(rng, dt.date(2026, 4, 1), dt.date(2026, 4, 30)),
        }
        for e in taxpayers
    ]
    defects = _plant(seed, TAX_RESOURCE, _KEYS[TAX_RESOURCE], rows)
    return GeneratedResource(code=TAX_RESOURCE, key=_KEYS[TAX_RESOURCE], rows=rows, defects=defects)


def tax_credit_messages(seed: int = DEFAULT_SEED, n: int | None = None) -> list[dict[str, Any]]:
    """The Kafka envelopes (INTERFACES.md) the tax vertical system pushes to
    govex.ingest.TAX-RES-001: one `upsert` per record of `tax_credit_records(seed, n)`, with
    deterministic message ids and event times one second apart from 2026-11-27T00:00:00Z."""
    records = tax_credit_records(seed, n)
    rng = _rng(seed, f"{TAX_RESOURCE}:messages")
    start = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
    messages = []
    for i, row in enumerate(records.rows):
        data = {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in row.items()}
        messages.append(
            {
                "message_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "resource": TAX_RESOURCE,
                "contract_version": "1.0.0",
                "op": "upsert",
                "key": {k: data[k] for k in records.key},
                "data": data,
                "source_system": "tax-vertical",
                "event_time": (start + dt.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
    return messages


def generate_city(
    workspace: Path, targets: Mapping[str, str], *, seed: int = DEFAULT_SEED, scale: float = 1.0
) -> DefectManifest:
    """(Re)create every table- or file-sourced resource of `workspace` that the generator knows,
    at `targets[connection]` (a resolved SQLAlchemy URL, or an absolute directory for a file
    connection), and write the manifest to `<workspace>/data/defects.json`.

    Raises DeclarationError when a needed connection has no target or the workspace does not
    match the generator; TransientError when a database cannot be reached.
    """
    plans = plan_sources(Path(workspace), targets, GENERATED_RESOURCES)
    generated = generate_resources(seed=seed, scale=scale, codes=[p.code for p in plans])
    write_sources(plans, generated, targets)
    manifest = DefectManifest(
        seed=seed,
        scale=scale,
        resources=tuple(generated[p.code].summary() for p in plans),
    )
    manifest.write(Path(workspace) / "data" / "defects.json")
    return manifest
