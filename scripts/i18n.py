"""Translation chores for one catalog, safe to run from several shells at once.

    python scripts/i18n.py update APP        # makemessages + compile for APP
    python scripts/i18n.py missing APP       # msgids with no zh-Hans translation
    python scripts/i18n.py fill APP FILE     # FILE: JSON {msgid: msgstr} → zh_Hans

APP is accounts, plans, billing or "core" (templates/ and config/, in locale/).
A plural entry is filled with a JSON list of forms. Every step holds a lock, so
two people extracting and filling the same catalog do not overwrite each other.
"""

import fcntl
import json
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import polib

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
APPS = ("accounts", "plans", "billing")


def catalog_dir(app: str) -> Path:
    return ROOT / "locale" if app == "core" else ROOT / app / "locale"


@contextmanager
def locked(app: str):
    with open(f"/tmp/hotline400-i18n-{app}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(args, cwd):
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def update(app: str) -> None:
    langs = ["-l", "zh_Hans", "-l", "en", "--no-obsolete"]
    if app == "core":
        ignores = [f"--ignore={p}" for p in (*APPS, ".venv", "var", "tests", "bench")]
        _run(
            [VENV_BIN / "python", "manage.py", "makemessages", *langs, *ignores],
            ROOT,
        )
    else:
        _run([VENV_BIN / "django-admin", "makemessages", *langs], ROOT / app)
    compile_(app)


def compile_(app: str) -> None:
    for lang in ("zh_Hans", "en"):
        po = catalog_dir(app) / lang / "LC_MESSAGES" / "django.po"
        if po.exists():
            polib.pofile(str(po)).save_as_mofile(str(po.with_suffix(".mo")))


def _po(app: str) -> polib.POFile:
    return polib.pofile(str(catalog_dir(app) / "zh_Hans" / "LC_MESSAGES" / "django.po"))


def missing(app: str) -> list[str]:
    return [
        e.msgid
        for e in _po(app)
        if not e.obsolete
        and (e.fuzzy or not (e.msgstr or any(e.msgstr_plural.values())))
    ]


def fill(app: str, translations: dict) -> int:
    po = _po(app)
    done = 0
    for entry in po:
        if entry.msgid not in translations:
            continue
        value = translations[entry.msgid]
        if entry.msgid_plural:
            forms = value if isinstance(value, list) else [value]
            entry.msgstr_plural = {i: forms[min(i, len(forms) - 1)] for i in range(1)}
        else:
            entry.msgstr = value
        if "fuzzy" in entry.flags:
            entry.flags.remove("fuzzy")
        done += 1
    po.save()
    compile_(app)
    return done


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in {"update", "missing", "fill"}:
        print(__doc__)
        return 2
    command, app = argv[0], argv[1]
    with locked(app):
        if command == "update":
            update(app)
        elif command == "missing":
            for msgid in missing(app):
                print(json.dumps(msgid, ensure_ascii=False))
        else:
            data = json.loads(Path(argv[2]).read_text(encoding="utf-8"))
            print(f"filled {fill(app, data)} of {len(data)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
