"""`member import`: members from a spreadsheet export (a plain name,phone sheet, Google
Contacts or Outlook CSV). Every row is checked before anything is written: an import either
adds every good row or, if any row is bad and the organiser didn't say to skip them, nothing."""
from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from phonetree.directory import ROLES, add_member, clean_name, resolve_channel
from phonetree.errors import PhonetreeError
from phonetree.templates import check_language
from phonetree.models import Group, Member
from phonetree.phones import display, parse_phone

# Header names as the common exports spell them, best first. First names only where we can.
NAME_COLUMNS = ["name", "first name", "given name", "nickname", "display name", "full name"]
PHONE_COLUMNS = ["phone", "mobile", "mobile phone", "phone 1 - value", "primary phone", "home phone",
                 "telephone", "tel", "phone number", "number", "business phone", "phone 2 - value"]


@dataclass
class ImportRow:
    line: int
    name: str
    phone: str
    channel: str = "sms"
    roles: tuple[str, ...] = ()
    language: str = "en"


@dataclass
class ImportPlan:
    good: list[ImportRow] = field(default_factory=list)
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # line, what, why
    flagged: list[tuple[int, str, str]] = field(default_factory=list)  # line, who, what to check


def _column(headers: list[str], choices: list[str]) -> str | None:
    lowered = {h.strip().lower(): h for h in headers}
    for choice in choices:
        if choice in lowered:
            return lowered[choice]
    return None


# Byte-order marks a spreadsheet puts first, and the encoding each means (Excel's "Unicode
# text" is UTF-16 little-endian with a BOM; its "CSV UTF-8" starts with the UTF-8 one).
BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def decode(raw: bytes, name: str) -> str:
    """The file's text, whatever a spreadsheet saved it as: a BOM says so outright; otherwise
    charset-normalizer decides (plain CSV from Excel on Windows is Windows-1252)."""
    for bom, encoding in BOMS:
        if raw.startswith(bom):
            return raw.decode(encoding)
    try:
        return raw.decode("utf-8")  # the common case, and unambiguous when it decodes
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(raw).best()
    if best is None:
        raise PhonetreeError(f"can't tell how {name} is encoded; save it again as CSV UTF-8 from the spreadsheet.")
    return str(best)


def read_rows(path: Path) -> tuple[list[tuple[int, dict[str, str]]], str, list[str]]:
    """The rows, each with the line of the file it starts on, the name column and the phone
    columns. Tab-separated text (Excel's "Unicode text") is read as well as CSV."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise PhonetreeError(f"can't read {path}: {error.strerror}.")
    text = decode(raw, path.name)
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    headers = [h for h in (reader.fieldnames or []) if h is not None]
    name_col = _column(headers, NAME_COLUMNS)
    # Every phone-like column, best first: Outlook puts a landline under Home Phone, a mobile
    # under Mobile Phone, and leaves the other blank.
    lowered = {h.strip().lower(): h for h in headers}
    phone_cols = [lowered[c] for c in PHONE_COLUMNS if c in lowered]
    if name_col is None or not phone_cols:
        raise PhonetreeError(
            f"{path.name} needs a name column and a phone column (found: {', '.join(headers) or 'none'}); "
            "a first row like 'name,phone' works."
        )
    rows = []
    line = reader.line_num + 1  # the line the next row starts on
    for row in reader:
        # A row of empty cells (a spreadsheet's blank lines at the end) is no row at all.
        if any((value or "").strip() for key, value in row.items() if key is not None):
            rows.append((line, row))
        line = reader.line_num + 1
    return rows, name_col, phone_cols


def _abroad(phone: str, group: Group) -> bool:
    """A number outside the UK in a group that lives in the UK: worth a second look."""
    return group.timezone == "Europe/London" and not phone.startswith("+44")


def plan_import(session: Session, group: Group, path: Path) -> ImportPlan:
    rows, name_col, phone_cols = read_rows(path)
    existing = {n.lower() for n in session.scalars(select(func.lower(Member.name)).where(Member.group_id == group.id))}
    phones = {p: n for p, n in session.execute(select(Member.phone, Member.name).where(Member.group_id == group.id))}
    plan = ImportPlan()
    seen: set[str] = set()
    for number, row in rows:
        raw_name = (row.get(name_col) or "").strip()
        # "Margaret Smith" -> "Margaret": only first or chosen names are kept.
        first = raw_name.split()[0] if raw_name and name_col.lower() in ("name", "full name", "display name") else raw_name
        given = [(row.get(col) or "").strip() for col in phone_cols]
        raw_phone = next((p for p in given if p), "").split(":::")[0].strip()  # Google joins several with :::
        try:
            name = clean_name(first)
            if name.lower() in existing or name.lower() in seen:
                raise PhonetreeError(f"{name!r} is already in {group.name}")
            phone = parse_phone(raw_phone)
            if phone in phones:
                raise PhonetreeError(f"{phones[phone]} in {group.name} already has that number "
                                     "(for a shared phone, add them with: member add ... --shared)")
            channel, _ = resolve_channel(phone, None, group.default_channel)
        except PhonetreeError as error:
            plan.rejected.append((number, raw_name or "(no name)", str(error).rstrip(".")))
            continue
        roles = _roles(row)
        if isinstance(roles, str):
            plan.rejected.append((number, raw_name, roles))
            continue
        language = next((v.strip().lower() for k, v in row.items()
                         if k and k.strip().lower() == "language" and v and v.strip()), "en")
        try:
            language = check_language(language)
        except PhonetreeError as error:
            plan.rejected.append((number, raw_name, str(error).rstrip(".")))
            continue
        seen.add(name.lower())
        phones[phone] = name
        if _abroad(phone, group):
            plan.flagged.append((number, name, f"{display(phone)} is a number abroad, not a UK one; check it"))
        plan.good.append(ImportRow(number, name, phone, channel, roles, language))
    return plan


def _roles(row: dict[str, str]) -> tuple[str, ...] | str:
    """An optional "role" (or "roles") column: peer, carer, organiser; several split by ; or /.
    Returns the roles, or the reason the cell can't be read."""
    cell = next((v for k, v in row.items() if k and k.strip().lower() in ("role", "roles") and v), "")
    roles = tuple(r.strip().lower() for r in cell.replace("/", ";").replace(",", ";").split(";") if r.strip())
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        return f"unknown role {unknown[0]!r} (use peer, carer or organiser)"
    return roles


def apply_import(session: Session, group: Group, plan: ImportPlan,
                 progress: Callable[[int], None] = lambda _: None) -> list[Member]:
    added = []
    for row in plan.good:
        added.append(add_member(session, group, row.name, row.phone, row.channel, row.roles, row.language)[0])
        progress(1)
    return added
