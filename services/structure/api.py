"""structure's JSON API: parse, call a handler, shape the answer.

`form`, `confirm` and `new_captcha` run the handlers with this process's wiring, for the API
and the pages alike."""

from __future__ import annotations

import base64
from dataclasses import asdict
from typing import Any

from flask import Response, url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from services.structure import domain, handlers
from services.structure.bootstrap import Structure
from services.structure.captcha import IssuedCaptcha
from services.structure.schemas import (
    CaptchaRequestSchema,
    CaptchaSchema,
    ConfirmStructureSchema,
    RegistrationFormSchema,
    StructureCreatedSchema,
)
from shared.bootstrap import wiring_of

blp = Blueprint(
    "structure", __name__, url_prefix="/structure/api", description="Step 2: complete the information"
)


def _wiring() -> Structure:
    return wiring_of()


def captcha_required() -> bool:
    return _wiring().settings.captcha_enabled


def form(registration_id: str) -> domain.Registration:
    wiring = _wiring()
    return handlers.registration_form(registration_id, wiring.uow(), wiring.registrations)


def confirm(command: handlers.ConfirmStructure) -> domain.NewStructure:
    wiring = _wiring()
    return handlers.confirm_structure(
        command,
        wiring.uow(),
        wiring.register,
        captcha_required=captcha_required(),
        arrivals=wiring.registrations,
        claim_ttl_seconds=wiring.settings.structure_claim_ttl_seconds,
    )


def existing_structure(registration: domain.Registration) -> domain.ExistingStructure | None:
    """The structure that already has the registration's identity: the newcomer asks to join it."""
    return handlers.existing_structure(registration.identity, _wiring().uow())


def new_captcha(registration_id: str | None = None, *, with_image: bool = False) -> IssuedCaptcha:
    """A new challenge, for `registration_id` when one is named (the page's own, or the API's
    `?registration_id=`); its image drawn now only `with_image`."""
    wiring = _wiring()
    return handlers.issue_captcha(
        wiring.uow(), wiring.captchas, wiring.sealing_keys, registration_id, with_image=with_image
    )


def captcha_image_url(captcha: IssuedCaptcha) -> str:
    return url_for("structure.CaptchaImage", captcha_id=captcha.captcha_id)


def captcha_audio_url(captcha: IssuedCaptcha) -> str:
    return url_for("structure.CaptchaAudio", captcha_id=captcha.captcha_id)


def new_captcha_url(registration_id: str) -> str:
    """Where a page's script asks for a new challenge for the registration (`POST`)."""
    return url_for("structure.CaptchaChallenges", registration_id=registration_id)


def _given(section: dict[str, Any] | None) -> dict[str, Any]:
    """The fields actually sent: a left-out or null field takes the form's default."""
    return {k: v for k, v in (section or {}).items() if v is not None}


@blp.route("/registrations/<registration_id>")
class RegistrationForm(MethodView):
    @blp.response(200, RegistrationFormSchema)
    def get(self, registration_id):
        """The step-2 form's data, pre-filled from SIRENE."""
        registration = form(registration_id)
        existing = existing_structure(registration)
        return {
            **asdict(registration.identity),
            "login_email": registration.login_email,
            "captcha_required": captcha_required(),
            "prefill": asdict(registration.prefill),
            "prefill_source": registration.prefill_source,
            "verified": registration.verified,
            **({"existing_structure": asdict(existing)} if existing else {}),
        }

    @blp.arguments(ConfirmStructureSchema)
    @blp.response(201, StructureCreatedSchema)
    def post(self, body, registration_id):
        """Step 2: confirm the structure, the person and the features wanted."""
        captcha = body.get("captcha") or {}
        structure = confirm(
            handlers.ConfirmStructure(
                registration_id=registration_id,
                structure=domain.StructureFields(**_given(body["structure"])),
                user=domain.UserForm(**_given(body["user"])),
                features=domain.Features(**_given(body["features"])),
                captcha_id=captcha.get("captcha_id"),
                captcha_answer=captcha.get("answer"),
            )
        )
        return {"structure_id": structure.structure_id}


@blp.route("/captchas")
class CaptchaChallenges(MethodView):
    @blp.arguments(CaptchaRequestSchema, location="query")
    @blp.response(201, CaptchaSchema)
    def post(self, query):
        """A new bot challenge: its id, its image, and where to get it as audio (valid 10
        minutes, single use).

        Naming the registration (`?registration_id=`) keeps only its latest few challenges
        alive: a new one spends the oldest."""
        issued = new_captcha(query.get("registration_id"), with_image=True)
        png = issued.png or b""
        return {
            "captcha_id": issued.captcha_id,
            "image": "data:image/png;base64," + base64.b64encode(png).decode("ascii"),
            "image_url": captcha_image_url(issued),
            "audio_url": captcha_audio_url(issued),
        }


@blp.route("/captchas/<captcha_id>.png")
class CaptchaImage(MethodView):
    @blp.alt_response(200, description="L'image PNG du défi", content_type="image/png", success=True)
    def get(self, captcha_id):
        """The challenge's image, for pages that show it with an <img>: drawn again (same text,
        new noise) a few times at most per challenge, images and audio together, the image
        given by `POST /captchas` included."""
        wiring = _wiring()
        png = handlers.captcha_image(captcha_id, wiring.uow(), wiring.captchas, wiring.sealing_keys)
        return Response(png, mimetype="image/png", headers={"Cache-Control": "no-store"})


@blp.route("/captchas/<captcha_id>.wav")
class CaptchaAudio(MethodView):
    @blp.alt_response(
        200, description="Le code du défi, dicté en français (WAV)", content_type="audio/wav", success=True
    )
    def get(self, captcha_id):
        """The challenge said aloud, for people who cannot read its image: three beeps, its
        characters said one by one in French under noise, a last beep. Made again (same text,
        new noise) at each call, on the same budget as the images: a few times at most per
        challenge, images and audio together."""
        wiring = _wiring()
        wav = handlers.captcha_audio(captcha_id, wiring.uow(), wiring.captchas, wiring.sealing_keys)
        return Response(wav, mimetype="audio/wav", headers={"Cache-Control": "no-store"})
