"""Refresh docs/screenshots/ (shown in the README) from the journeys' pictures.

    .venv/bin/python -m pytest tests/e2e          # writes test-artifacts/screenshots/
    .venv/bin/python -m tests.e2e.readme_screenshots

Each README picture is the first screen of a key page (1280 px wide, or the
390 px phone), reduced to a 256-colour palette so the repository stays small.
"""

import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "test-artifacts" / "screenshots"
TARGET = ROOT / "docs" / "screenshots"

J1 = "company_signs_up_is_approved_and_receives_the_email"
J2 = "owner_reserves_a_vanity_number_checks_out_and_staff_activate_it"
J3 = "staff_upload_a_gbk_file_watch_the_progress_and_get_the_error_report"
J4 = "month_is_closed_and_the_owner_checks_the_bill_its_calls_and_the_email"
J5 = "finance_reads_the_running_bill_charts_and_advice_members_see_no_bills"
J6 = "owner_creates_an_api_key_and_reads_the_invoice_through_the_api"
PHONE = "main_pages_fit_a_phone_and_the_menu_opens_from_the_keyboard"

# README name → journey screenshot (the first screen of it is kept).
CURATED = {
    "01-signup": f"{J1}-zh-hans-signup",
    "02-admin-verification-queue": f"{J1}-zh-hans-admin-queue",
    "03-number-search": f"{J2}-zh-hans-search",
    "04-checkout-countdown": f"{J2}-zh-hans-checkout",
    "05-checkout-review": f"{J2}-zh-hans-review",
    "06-packages": f"{J2}-zh-hans-compare",
    "07-admin-activation": f"{J2}-zh-hans-admin-activate",
    "08-admin-cdr-import": f"{J3}-zh-hans-done",
    "09-admin-monthly-close": f"{J4}-zh-hans-admin-close",
    "10-bill": f"{J4}-zh-hans-invoice",
    "11-bill-line-calls": f"{J4}-zh-hans-line-calls",
    "12-month-to-date": f"{J5}-zh-hans-month-to-date",
    "13-analytics": f"{J5}-zh-hans-analytics",
    "14-plan-advisor": f"{J5}-zh-hans-advisor",
    "15-api-key": f"{J6}-zh-hans-api-key",
    "16-bill-en": f"{J4}-en-invoice",
    "17-phone-overview": f"{PHONE}-zh-hans-phone-overview",
    "18-phone-bill": f"{PHONE}-zh-hans-phone-bill",
    "19-phone-menu": f"{PHONE}-zh-hans-phone-menu",
}
FIRST_SCREEN = 900  # px of a 1280 px-wide page; a phone keeps its 844


def main() -> int:
    TARGET.mkdir(parents=True, exist_ok=True)
    missing = []
    for name, source in CURATED.items():
        path = SOURCE / f"{source}.png"
        if not path.exists():
            missing.append(path.name)
            continue
        image = Image.open(path).convert("RGB")
        image = image.crop((0, 0, image.width, min(image.height, FIRST_SCREEN)))
        image = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        image.save(TARGET / f"{name}.png", optimize=True)
    if missing:
        print("run the e2e tests first; missing:\n  " + "\n  ".join(missing))
        return 1
    print(f"{len(CURATED)} pictures in {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
