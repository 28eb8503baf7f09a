"""Demo agents, companies and users (see the seed_demo command)."""

import datetime as dt
import struct
import zlib

from django.conf import settings
from django.core.files.base import ContentFile
from django.utils import timezone

from .models import Agent, BusinessLicence, Company, Invitation, User

DEMO_PASSWORD = "hotline400-demo"

AGENTS = [
    {
        "name": "华南通信代理",
        "legal_name": "深圳华南通信服务有限公司",
        "uscc": "91440300MA5DC0D47X",
        "address": "广东省深圳市南山区科技园科发路8号",
        "bank_name": "招商银行深圳科技园支行",
        "bank_account": "7559 1234 5678 901",
        "contact_name": "陈经理",
        "contact_phone": "+8675586001234",
        "contact_email": "support@huanan-tel.example.cn",
        "staff_email": "agent@hotline400.example.cn",
        "staff_name": "林小华",
    },
    {
        "name": "华北通信代理",
        "legal_name": "北京华北通信服务有限公司",
        "uscc": "91110108MA01ABCD0B",
        "address": "北京市海淀区中关村大街1号",
        "bank_name": "中国工商银行北京中关村支行",
        "bank_account": "0200 0045 0900 1234 567",
        "contact_name": "王经理",
        "contact_phone": "+861062001234",
        "contact_email": "support@huabei-tel.example.cn",
        "staff_email": "agent-north@hotline400.example.cn",
        "staff_name": "赵北",
    },
]

COMPANIES = [
    {
        "agent": "华南通信代理",
        "name": "深圳市鹏程家电维修有限公司",
        "uscc": "91440300MA5F8QWX2L",
        "address": "广东省深圳市福田区深南大道6008号",
        "billing_email": "finance@pengcheng.example.cn",
        "contact_phone": "+8613800138000",
        "verification_status": Company.Verification.APPROVED,
        "users": [
            ("owner@pengcheng.example.cn", "张伟", User.Role.OWNER),
            ("finance@pengcheng.example.cn", "李娜", User.Role.FINANCE),
            ("member@pengcheng.example.cn", "王芳", User.Role.MEMBER),
        ],
    },
    {
        "agent": "华南通信代理",
        "name": "广州悦来旅行社有限公司",
        "uscc": "91440101MA59TRA81G",
        "address": "广东省广州市天河区天河路385号",
        "billing_email": "billing@yuelai-travel.example.cn",
        "contact_phone": "+862038881234",
        "verification_status": Company.Verification.PENDING,
        "users": [("owner@yuelai-travel.example.cn", "刘洋", User.Role.OWNER)],
    },
    {
        "agent": "华南通信代理",
        "name": "东莞市达成五金制品有限公司",
        "uscc": "91441900MA4UJ2KR0A",
        "address": "广东省东莞市长安镇振安中路18号",
        "billing_email": "caiwu@dacheng-hw.example.cn",
        "contact_phone": "+8676985501234",
        "verification_status": Company.Verification.REJECTED,
        "verification_reason": (
            "营业执照照片模糊，无法辨认统一社会信用代码，请重新拍摄上传。"
        ),
        "users": [("owner@dacheng-hw.example.cn", "何敏", User.Role.OWNER)],
    },
    {
        "agent": "华北通信代理",
        "name": "北京京东方物流有限公司",
        "uscc": "91110105MA00L0G13K",
        "address": "北京市朝阳区建国路88号",
        "billing_email": "ap@jdf-logistics.example.cn",
        "contact_phone": "+861085001234",
        "verification_status": Company.Verification.APPROVED,
        "users": [("owner@jdf-logistics.example.cn", "孙强", User.Role.OWNER)],
    },
]


def _valid_uscc(code: str) -> str:
    from stdnum.cn import uscc

    return code[:17] + uscc.calc_check_digit(code[:17])


def seed(*, stdout) -> None:
    agents = {}
    for data in AGENTS:
        data = dict(data)
        staff_email = data.pop("staff_email")
        staff_name = data.pop("staff_name")
        data["uscc"] = _valid_uscc(data["uscc"])
        agent, _ = Agent.objects.get_or_create(name=data["name"], defaults=data)
        agents[agent.name] = agent
        if not User.objects.filter(email=staff_email).exists():
            User.objects.create_user(
                staff_email,
                DEMO_PASSWORD,
                full_name=staff_name,
                agent=agent,
                is_staff=True,
            )
    if not User.objects.filter(email="admin@hotline400.example.cn").exists():
        User.objects.create_superuser(
            "admin@hotline400.example.cn", DEMO_PASSWORD, full_name="Superuser"
        )

    for data in COMPANIES:
        data = dict(data)
        users = data.pop("users")
        data["agent"] = agents[data["agent"]]
        data["uscc"] = _valid_uscc(data["uscc"])
        if data["verification_status"] == Company.Verification.APPROVED:
            data["verified_at"] = timezone.now()
        company, _ = Company.objects.get_or_create(uscc=data["uscc"], defaults=data)
        for email, name, role in users:
            if not User.objects.filter(email=email).exists():
                User.objects.create_user(
                    email, DEMO_PASSWORD, full_name=name, company=company, role=role
                )

    _seed_licences()
    _seed_invitation()


def summary(*, stdout) -> None:
    """The logins, printed last by seed_demo so they are what a newcomer sees."""
    stdout.write(f"Demo logins (password: {DEMO_PASSWORD}):")
    stdout.write("  company owner:   owner@pengcheng.example.cn")
    stdout.write("  company finance: finance@pengcheng.example.cn")
    stdout.write("  company member:  member@pengcheng.example.cn")
    stdout.write("  awaiting 实名认证: owner@yuelai-travel.example.cn")
    stdout.write("  rejected 实名认证: owner@dacheng-hw.example.cn")
    stdout.write("  agent staff:     agent@hotline400.example.cn  (/admin/)")
    stdout.write("  superuser:       admin@hotline400.example.cn  (/admin/)")


def _demo_png(width: int = 320, height: int = 200) -> bytes:
    """A plain PNG standing in for a scanned licence (no image library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return (
            struct.pack(">I", len(data))
            + body
            + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
        )

    row = b"\x00" + bytes((250, 236, 200)) * width
    pixels = zlib.compress(row * height)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", pixels)
        + chunk(b"IEND", b"")
    )


def _seed_licences() -> None:
    """Every demo company has a licence, so the verification queue shows one."""
    image = _demo_png()
    for company in Company.objects.filter(
        uscc__in=[_valid_uscc(c["uscc"]) for c in COMPANIES]
    ):
        if company.licences.exists():
            continue
        owner = company.users.filter(role=User.Role.OWNER).first()
        licence = BusinessLicence(
            company=company,
            original_name="营业执照.png",
            content_type=BusinessLicence.ContentType.PNG,
            size=len(image),
            uploaded_by=owner,
        )
        licence.file.save("licence.png", ContentFile(image), save=True)


def _seed_invitation() -> None:
    company = Company.objects.filter(uscc=_valid_uscc(COMPANIES[0]["uscc"])).first()
    if company is None or company.invitations.exists():
        return
    from .services import invitation_token_hash

    Invitation.objects.create(
        company=company,
        email="new.colleague@pengcheng.example.cn",
        role=User.Role.MEMBER,
        # A token nobody knows: the demo shows an open invitation, not a link.
        token=invitation_token_hash(f"demo-{company.pk}-{settings.SECRET_KEY}"),
        invited_by=company.users.filter(role=User.Role.OWNER).first(),
        expires_at=timezone.now() + dt.timedelta(days=settings.HOTLINE_INVITATION_DAYS),
    )
