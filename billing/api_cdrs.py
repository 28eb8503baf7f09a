"""The carrier push API: ``POST /api/cdrs/`` with a batch of call records.

Authenticated by a per-agent key (``Authorization: Bearer h4a_…``); a key may
push calls only for numbers of its agent's companies. A batch holds up to
10,000 calls with the CDR file's English field names; each call is validated
like a file row and a call_id already stored is a duplicate, so a retried
batch imports nothing twice. docs/cdr-import.md describes it for carriers.
"""

import json

from django.core.exceptions import RequestDataTooBig
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.services.agent_api_keys import agent_api_key_authenticate
from billing.services.cdr_import import MAX_API_BATCH, cdr_import_batch


class CarrierClient:
    """The caller of the push API: the agent a key acts for."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, key):
        self.key = key
        self.agent = key.agent

    def __str__(self) -> str:
        return f"api-key {self.key.prefix} ({self.agent})"


class AgentApiKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer <key>`` with a per-agent carrier key."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _sep, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise AuthenticationFailed(
                _("Send the key as “Authorization: Bearer <key>”.")
            )
        key = agent_api_key_authenticate(raw.strip())
        if key is None:
            raise AuthenticationFailed(_("Unknown or revoked API key."))
        return CarrierClient(key), key

    def authenticate_header(self, request):
        return self.keyword


_CALL_EXAMPLE = {
    "call_id": "CT202603020915000001",
    "service_number": "400-810-8888",
    "caller_number": "138****1234",
    "caller_area": "广东深圳",
    "answer_number": "+8613900139000",
    "start_time": "2026-03-02 09:15:00",
    "duration_seconds": 61,
    "direction": "inbound",
    "status": "answered",
}


class CdrCallSerializer(serializers.Serializer):
    """One call: the CDR file's columns (documentation only; see RowValidator)."""

    call_id = serializers.CharField(max_length=64)
    service_number = serializers.CharField()
    caller_number = serializers.CharField()
    caller_area = serializers.CharField(required=False)
    answer_number = serializers.CharField(required=False)
    start_time = serializers.CharField(
        help_text="YYYY-MM-DD HH:MM:SS, Asia/Shanghai (or with a UTC offset)"
    )
    duration_seconds = serializers.IntegerField(min_value=0)
    direction = serializers.ChoiceField(["inbound", "outbound", "呼入", "呼出"])
    status = serializers.ChoiceField(["answered", "missed", "接通", "未接"])


class CdrBatchSerializer(serializers.Serializer):
    calls = CdrCallSerializer(many=True)


class CdrRowErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    call_id = serializers.CharField()
    reason = serializers.CharField()


class CdrBatchResultSerializer(serializers.Serializer):
    import_id = serializers.IntegerField()
    received = serializers.IntegerField()
    imported = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = serializers.IntegerField()
    message = serializers.CharField()
    errors = CdrRowErrorSerializer(many=True)


class CdrPushView(APIView):
    authentication_classes = [AgentApiKeyAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="cdrs_push",
        summary="Push a batch of call records (up to 10,000)",
        request=CdrBatchSerializer,
        responses={
            200: CdrBatchResultSerializer,
            400: inline_serializer(
                name="CdrBatchRefused", fields={"detail": serializers.CharField()}
            ),
            413: inline_serializer(
                name="CdrBatchTooLarge", fields={"detail": serializers.CharField()}
            ),
        },
        examples=[OpenApiExample("One call", value={"calls": [_CALL_EXAMPLE]})],
        tags=["cdrs"],
    )
    def post(self, request):
        try:
            body = request.body
        except RequestDataTooBig:
            return _refuse(
                status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                _("The request is too large: send at most %(max)d calls per batch.")
                % {"max": MAX_API_BATCH},
            )
        try:
            payload = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return _refuse(
                status.HTTP_400_BAD_REQUEST,
                _("The body is not valid UTF-8 JSON."),
            )
        calls = payload.get("calls") if isinstance(payload, dict) else payload
        if not isinstance(calls, list):
            return _refuse(
                status.HTTP_400_BAD_REQUEST,
                _("Send a JSON object {“calls”: [ … ]} with a list of calls."),
            )
        if len(calls) > MAX_API_BATCH:
            return _refuse(
                status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                _("The batch has %(count)d calls; send at most %(max)d per request.")
                % {"count": len(calls), "max": MAX_API_BATCH},
            )
        if not calls:
            return _refuse(status.HTTP_400_BAD_REQUEST, _("The batch has no calls."))
        bad = next((i for i, c in enumerate(calls) if not isinstance(c, dict)), None)
        if bad is not None:
            return _refuse(
                status.HTTP_400_BAD_REQUEST,
                _("Call %(index)d is not a JSON object with the call's fields.")
                % {"index": bad},
            )
        client = request.user
        outcome = cdr_import_batch(
            agent=client.agent,
            calls=calls,
            name=_("API batch (key %(prefix)s)") % {"prefix": client.key.prefix},
        )
        imp = outcome.cdr_import
        return Response(
            {
                "import_id": imp.pk,
                "received": len(calls),
                "imported": imp.imported,
                "duplicates": imp.duplicates,
                "rejected": imp.rejected,
                "message": imp.message,
                "errors": [
                    {"index": p.line_number, "call_id": p.call_id, "reason": p.reason}
                    for p in outcome.problems
                ],
            }
        )


def _refuse(code: int, message: str) -> Response:
    return Response({"detail": message}, status=code)


class AgentApiKeyScheme(OpenApiAuthenticationExtension):
    """Documents the carrier key in the OpenAPI schema."""

    target_class = "billing.api_cdrs.AgentApiKeyAuthentication"
    name = "AgentApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An agent's carrier key (created by agent staff in the "
            "back office), for pushing call records.",
        }
