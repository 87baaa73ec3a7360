"""structure's JSON API: parse, call a handler, shape the answer."""

from __future__ import annotations

import base64
from dataclasses import asdict
from typing import Any

from flask import Response, current_app, url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from services.structure import domain, handlers
from services.structure.schemas import (
    CaptchaSchema,
    ConfirmStructureSchema,
    RegistrationFormSchema,
    StructureCreatedSchema,
)
from shared.errors import NotFound

blp = Blueprint(
    "structure", __name__, url_prefix="/structure/api", description="Step 2: complete the information"
)


def _deps():
    return current_app.extensions["structure"]


def _given(section: dict[str, Any] | None) -> dict[str, Any]:
    """The fields actually sent: a left-out or null field takes the form's default."""
    return {k: v for k, v in (section or {}).items() if v is not None}


@blp.route("/registrations/<registration_id>")
class RegistrationForm(MethodView):
    @blp.response(200, RegistrationFormSchema)
    def get(self, registration_id):
        """The step-2 form's data, pre-filled from SIRENE."""
        deps = _deps()
        registration = handlers.registration_form(
            registration_id, deps.repo, deps.settings.event_wait_seconds
        )
        return {
            **asdict(registration.identity),
            "login_email": registration.login_email,
            "captcha_required": deps.settings.captcha_enabled,
            "prefill": asdict(registration.prefill),
        }

    @blp.arguments(ConfirmStructureSchema)
    @blp.response(201, StructureCreatedSchema)
    def post(self, body, registration_id):
        """Step 2: confirm the structure, the person and the features wanted."""
        deps = _deps()
        captcha = body.get("captcha") or {}
        cmd = handlers.ConfirmStructure(
            registration_id=registration_id,
            structure=domain.StructureFields(**_given(body["structure"])),
            user=domain.UserForm(**_given(body["user"])),
            features=domain.Features(**_given(body["features"])),
            captcha_id=captcha.get("captcha_id"),
            captcha_answer=captcha.get("answer"),
        )
        captchas = deps.captchas if deps.settings.captcha_enabled else None
        structure_id = handlers.confirm_structure(
            cmd, deps.repo, deps.sirene, captchas, deps.clock, deps.settings.event_wait_seconds
        )
        return {"structure_id": structure_id}


@blp.route("/captchas")
class CaptchaChallenges(MethodView):
    @blp.response(201, CaptchaSchema)
    def post(self):
        """A new bot challenge: its id and its image (valid 10 minutes, single use)."""
        issued = _deps().captchas.issue()
        return {
            "captcha_id": issued.captcha_id,
            "image": "data:image/png;base64," + base64.b64encode(issued.png).decode("ascii"),
            "image_url": url_for("structure.CaptchaImage", captcha_id=issued.captcha_id),
        }


@blp.route("/captchas/<captcha_id>.png")
class CaptchaImage(MethodView):
    @blp.alt_response(200, description="L'image PNG du défi", content_type="image/png", success=True)
    def get(self, captcha_id):
        """The challenge's image, for pages that show it with an <img>."""
        png = _deps().captchas.image(captcha_id)
        if png is None:
            raise NotFound("Cette image a expiré : demandez-en une nouvelle.")
        return Response(png, mimetype="image/png", headers={"Cache-Control": "no-store"})
