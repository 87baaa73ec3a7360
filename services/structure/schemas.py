"""structure's request and answer schemas (they also make its OpenAPI document).

Requests are only shaped here (types, nesting, a bound on each text's size); whether a field is
required, short enough or well formed is decided by `domain`, which reports every faulty field
in one answer with its own limit (120 characters for the company name…). The bounds here are
above every limit of `domain`: they only keep oversized values from going any further.
"""

from __future__ import annotations

from marshmallow import EXCLUDE, fields

from services.structure.captcha import KEPT_PER_REGISTRATION
from shared.schemas import Length, PortalSchema

TEXT_MAX = 500  # above every limit of domain (the longest, the address, is 150)
EMAIL_MAX = 320  # 64 for the local part, @, 255 for the domain
CAPTCHA_MAX = 64
REGISTRATION_ID_MAX = 64


def _text(description: str, max_length: int = TEXT_MAX) -> fields.String:
    return fields.String(
        allow_none=True, validate=Length(max=max_length), metadata={"description": description}
    )


class StructureFieldsSchema(PortalSchema):
    company_name = _text("Raison sociale (obligatoire, 120 caractères au plus)")
    label = _text("Libellé de la structure")
    address = _text("Adresse (obligatoire)")
    address_complement_1 = _text("Complément d'adresse 1")
    address_complement_2 = _text("Complément d'adresse 2")
    postal_code = _text("Code postal (obligatoire ; 5 chiffres en France)")
    city = _text("Ville (obligatoire)")
    country = _text("Pays, code ISO 3166 à deux lettres (FR par défaut)")


class UserSchema(PortalSchema):
    last_name = _text("Nom (obligatoire)")
    first_name = _text("Prénom (obligatoire)")
    login_email_confirmation = _text(
        "L'adresse électronique de connexion, saisie à nouveau (obligatoire)", EMAIL_MAX
    )
    contact_email = _text("Adresse électronique de contact (par défaut, celle de connexion)", EMAIL_MAX)
    survey_consent = fields.Boolean(metadata={"description": "Accord pour l'enquête de satisfaction (non)"})


class FeaturesSchema(PortalSchema):
    payment_requests = fields.Boolean(
        metadata={"description": "Déposer des demandes de paiement : obligatoire, vrai par défaut"}
    )
    dume = fields.Boolean(metadata={"description": "Créer et/ou consulter des DUME (faux par défaut)"})


class CaptchaAnswerSchema(PortalSchema):
    captcha_id = _text("L'identifiant reçu avec l'image", CAPTCHA_MAX)
    answer = _text("Les caractères lus sur l'image", CAPTCHA_MAX)


class ConfirmStructureSchema(PortalSchema):
    structure = fields.Nested(StructureFieldsSchema, load_default=dict)
    user = fields.Nested(UserSchema, load_default=dict)
    features = fields.Nested(FeaturesSchema, load_default=dict)
    captcha = fields.Nested(
        CaptchaAnswerSchema,
        load_default=None,
        allow_none=True,
        metadata={"description": "Obligatoire quand la vérification anti-robot est activée"},
    )


class PrefillSchema(PortalSchema):
    company_name = fields.String()
    label = fields.String()
    address = fields.String()
    address_complement_1 = fields.String()
    address_complement_2 = fields.String()
    postal_code = fields.String()
    city = fields.String()
    country = fields.String()


class ExistingStructureSchema(PortalSchema):
    structure_id = fields.String()
    company_name = fields.String()
    postal_code = fields.String()
    city = fields.String()


class RegistrationFormSchema(PortalSchema):
    identifier_type = fields.String()
    identifier = fields.String()
    country = fields.String()
    login_email = fields.String(metadata={"description": "Rappelée sur le formulaire, à resaisir"})
    captcha_required = fields.Boolean(metadata={"description": "Le formulaire doit montrer une image"})
    prefill = fields.Nested(PrefillSchema)
    prefill_source = fields.String(
        metadata={"description": "La source SIRENE du pré-remplissage : stock, insee, recherche ou none"}
    )
    existing_structure = fields.Nested(
        ExistingStructureSchema,
        metadata={
            "description": "Présente quand l'identifiant a déjà une structure : la personne demande son "
            "rattachement"
        },
    )
    verified = fields.Boolean(
        metadata={
            "description": "Faux quand aucune source SIRENE n'a pu vérifier le SIRET : les données sont "
            "saisies par la personne et vérifiées plus tard"
        }
    )


class StructureCreatedSchema(PortalSchema):
    structure_id = fields.String()


class CaptchaRequestSchema(PortalSchema):
    """`POST /captchas` takes no body; the registration it is for may be named in the query."""

    class Meta:
        unknown = EXCLUDE  # other query parameters (a cache buster…) are ignored, as before

    registration_id = fields.String(
        validate=Length(min=1, max=REGISTRATION_ID_MAX),
        metadata={
            "description": "L'inscription pour laquelle le défi est demandé (facultatif) : "
            f"seuls ses {KEPT_PER_REGISTRATION} derniers défis restent valables"
        },
    )


class CaptchaSchema(PortalSchema):
    captcha_id = fields.String()
    image = fields.String(metadata={"description": "L'image, en data URL PNG"})
    image_url = fields.String(
        metadata={"description": "L'image du même défi, en PNG (mêmes caractères, dessinés à nouveau)"}
    )
    audio_url = fields.String(
        metadata={"description": "Le même défi dicté en français, en WAV (mêmes caractères)"}
    )
