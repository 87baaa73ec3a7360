"""Rules of steps 3 and 4. Pure: no Redis, no Flask, no clock (the time is passed in)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from services.activate import passwords
from shared.contracts import ROLE_PRINCIPAL_MANAGER
from shared.errors import Conflict, Gone, Invalid, NotFound

# Account statuses.
PENDING = "pending"  # StructureConfirmed handled, workspaces not chosen yet
AWAITING_ACTIVATION = "awaiting_activation"  # a link is out
EXPIRED = "expired"  # the last link expired unused; a new one can be asked for
ACTIVE = "active"

# Activation token states.
ISSUED = "issued"
USED = "used"
REPLACED = "replaced"
TOKEN_EXPIRED = "expired"


@dataclass(frozen=True)
class Workspace:
    code: str
    label: str
    description: str
    default: bool


WORKSPACES: tuple[Workspace, ...] = (
    Workspace(
        "SOLLICITATIONS_EMISES", "Sollicitations émises", "Réservé au suivi des sollicitations émises", True
    ),
    Workspace("FACTURES_EMISES", "Factures émises", "Réservé au dépôt des factures émises", True),
    Workspace(
        "DEMANDE_REMBOURSEMENT_TIC",
        "Demande de remboursement TIC",
        "Réservé au dépôt des demandes de remboursement TIC",
        False,
    ),
    Workspace("ENGAGEMENTS", "Engagements", "Visualisation des engagements", False),
    Workspace("FACTURES_A_VALIDER", "Factures à valider", "Réservé à la validation des factures", False),
    Workspace(
        "FACTURES_DE_TRAVAUX", "Factures de travaux", "Réservé au dépôt des factures de travaux", False
    ),
    Workspace(
        "MEMOIRES_FRAIS_JUSTICE",
        "Mémoires de frais de justice",
        "Réservé au dépôt de mémoires de frais de justice",
        False,
    ),
    Workspace(
        "RACCORDEMENT_EDI_API",
        "Raccordement EDI et API",
        "Permet de demander et de suivre le raccordement de vos structures pour l'utilisation des modes "
        "EDI et API",
        False,
    ),
    Workspace(
        "SUIVI_DES_FLUX", "Suivi des flux", "Réservé aux structures raccordées émettant des flux EDI", False
    ),
)
WORKSPACE_CODES = tuple(w.code for w in WORKSPACES)
DEFAULT_WORKSPACES = tuple(w.code for w in WORKSPACES if w.default)

SECRET_QUESTIONS: tuple[str, ...] = (
    "Quel est le nom de votre premier animal de compagnie ?",
    "Quel est le nom de jeune fille de votre mère ?",
    "Dans quelle ville êtes-vous né(e) ?",
    "Quel est le nom de la première société pour laquelle vous avez travaillé ?",
    "Quel était le nom de votre école primaire ?",
    "Quel est le prénom de votre meilleur(e) ami(e) d'enfance ?",
)

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128
PASSWORD_MIN_GROUPS = 3
ANSWER_MAX_LENGTH = 100

PASSWORD_RULE = (
    "Le mot de passe doit contenir au moins 8 caractères et au moins 3 des 4 types : "
    "majuscules, minuscules, chiffres, caractères spéciaux."
)


def iso_utc(timestamp: float) -> str:
    """The one timestamp format of event data (compared as strings by other services)."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


# --- step 3: workspaces -------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """A user account, keyed by the registration that creates it."""

    registration_id: str
    account_id: str
    structure_id: str
    last_name: str
    first_name: str
    login_email: str
    contact_email: str
    survey_consent: bool
    company_name: str = ""  # the structure's name, shown on the pages ("" for older accounts)
    features: dict[str, Any] = field(default_factory=dict)
    status: str = PENDING
    workspaces: tuple[str, ...] = ()
    token_hash: str | None = None
    token_expires_at: int | None = None
    role: str | None = None


def choose_workspaces(codes: Iterable[str] | None) -> tuple[str, ...]:
    """The workspaces kept, in the catalogue's order; None means the defaults."""
    if codes is None:
        return DEFAULT_WORKSPACES
    wanted = [c.strip().upper() for c in codes]
    unknown = sorted({c for c in wanted if c not in WORKSPACE_CODES})
    if unknown:
        raise Invalid.on(
            "workspaces",
            f"Espace(s) de travail inconnu(s) : {', '.join(unknown)}. "
            f"Valeurs possibles : {', '.join(WORKSPACE_CODES)}.",
        )
    return tuple(c for c in WORKSPACE_CODES if c in wanted)


def ensure_workspaces_can_be_chosen(account: Account) -> None:
    if account.status != PENDING:
        raise Conflict(
            "Les espaces de travail de ce compte ont déjà été choisis et le courriel d'activation "
            "a été envoyé. Si vous ne l'avez pas reçu, demandez un nouveau lien."
        )


def ensure_login_free(account: Account, active_owner: str | None) -> None:
    """A login email belongs to at most one active account."""
    if active_owner is not None and active_owner != account.registration_id:
        raise Conflict(
            "Un compte actif utilise déjà cette adresse électronique de connexion : "
            "connectez-vous avec ce compte ou recommencez avec une autre adresse."
        )


def login_key(login_email: str) -> str:
    """How a login email is compared: case does not matter."""
    return unicodedata.normalize("NFKC", login_email.strip()).casefold()


def ensure_link_can_be_resent(account: Account) -> None:
    if account.status == ACTIVE:
        raise Conflict(
            "Ce compte est déjà activé : connectez-vous avec votre adresse électronique "
            "et votre mot de passe."
        )
    if account.status == PENDING:
        raise NotFound(
            "Aucun lien d'activation n'a encore été envoyé : choisissez d'abord vos espaces de travail."
        )


def token_expiry(now: float, ttl_seconds: int) -> int:
    """Whole seconds, so that the stored expiry and the one in events are the same instant."""
    return int(now) + ttl_seconds


# --- step 4: the activation link ----------------------------------------------------------------


@dataclass(frozen=True)
class TokenRecord:
    """What is stored of an activation token: its hash, never the token."""

    token_hash: str
    registration_id: str
    expires_at: int
    state: str = ISSUED


class TokenGone(Gone):
    """A link that existed but can no longer be used; the page offers to send a new one."""

    def __init__(self, message: str, registration_id: str, reason: str) -> None:
        super().__init__(message)
        self.registration_id = registration_id
        self.reason = reason


UNKNOWN_LINK = (
    "Ce lien d'activation est inconnu : vérifiez que vous l'avez copié en entier depuis le courriel reçu."
)
_GONE_MESSAGES = {
    TOKEN_EXPIRED: "Ce lien d'activation a expiré. Demandez l'envoi d'un nouveau lien.",
    REPLACED: (
        "Ce lien d'activation a été remplacé par un lien plus récent : utilisez le dernier courriel "
        "reçu ou demandez l'envoi d'un nouveau lien."
    ),
    USED: (
        "Ce lien d'activation a déjà été utilisé : votre compte est actif, connectez-vous avec votre "
        "adresse électronique et votre mot de passe."
    ),
}


def token_state(record: TokenRecord, now: float) -> str:
    """The state as of `now`: an issued token past its expiry is expired before any sweep runs."""
    if record.state == ISSUED and now >= record.expires_at:
        return TOKEN_EXPIRED
    return record.state


def ensure_token_usable(record: TokenRecord | None, now: float) -> TokenRecord:
    if record is None:
        raise NotFound(UNKNOWN_LINK)
    state = token_state(record, now)
    if state != ISSUED:
        raise TokenGone(
            _GONE_MESSAGES.get(state, _GONE_MESSAGES[TOKEN_EXPIRED]), record.registration_id, state
        )
    return record


def ensure_token_is_accounts(record: TokenRecord, account: Account | None, same_hash) -> Account:
    """The account must still await activation with this very token (`same_hash` compares)."""
    if account is None:
        raise NotFound(UNKNOWN_LINK)
    if account.status == ACTIVE:
        raise TokenGone(_GONE_MESSAGES[USED], record.registration_id, USED)
    if (
        account.status != AWAITING_ACTIVATION
        or account.token_hash is None
        or not same_hash(account.token_hash, record.token_hash)
    ):
        raise TokenGone(_GONE_MESSAGES[REPLACED], record.registration_id, REPLACED)
    return account


def link_lapsed(account: Account | None, record: TokenRecord, same_hash) -> Account | None:
    """The account once its current link expired unused; None when the link was not its current one."""
    if (
        account is None
        or account.status != AWAITING_ACTIVATION
        or account.token_hash is None
        or not same_hash(account.token_hash, record.token_hash)
    ):
        return None
    return replace(account, status=EXPIRED)


@dataclass(frozen=True)
class ActivationForm:
    """A checked activation form: the password as hashed and the answer normalised."""

    password: str
    secret_question: str
    secret_answer: str


def normalise_password(password: str) -> str:
    """NFKC, as NIST 800-63B advises: the same password typed on two keyboards is the same."""
    return unicodedata.normalize("NFKC", password)


def password_groups(password: str) -> int:
    """How many of the 4 groups appear: ASCII upper, ASCII lower, digits, anything else."""
    upper = lower = digit = special = False
    for char in password:
        if "A" <= char <= "Z":
            upper = True
        elif "a" <= char <= "z":
            lower = True
        elif "0" <= char <= "9":
            digit = True
        else:
            special = True
    return upper + lower + digit + special


def password_errors(password: str) -> list[str]:
    """Why `password` (already normalised) breaks the rule's shape; empty when it has it.

    The shape is what the live meter of the page checks too (password-meter.js). The server
    then refuses, in `password_problems`, what has the shape but is still weak.
    """
    if not password:
        return ["Le mot de passe est obligatoire. " + PASSWORD_RULE]
    errors = []
    if len(password) < PASSWORD_MIN_LENGTH or password_groups(password) < PASSWORD_MIN_GROUPS:
        errors.append(PASSWORD_RULE)
    if len(password) > PASSWORD_MAX_LENGTH:
        errors.append(f"Le mot de passe doit contenir au plus {PASSWORD_MAX_LENGTH} caractères.")
    if any(unicodedata.category(c) == "Cc" for c in password):
        errors.append("Le mot de passe ne doit pas contenir de caractère de contrôle (tabulation, retour…).")
    return errors


def password_problems(password: str, personal: Iterable[str | None] = ()) -> list[str]:
    """Why `password` (already normalised) is refused: the rule's shape first; once it is met,
    a common password, or one built from `personal` (the person's names and emails)."""
    return password_errors(password) or passwords.weaknesses(password, personal)


def personal_data(account: Account) -> tuple[str, ...]:
    """What a password must not be built from: the person's names and email addresses."""
    return (account.first_name, account.last_name, account.login_email, account.contact_email)


def _collapse(text: str) -> str:
    return " ".join(text.split())


def normalise_answer(answer: str) -> str:
    """NFKC, case folded, whitespace collapsed and trimmed: « Altran  » and « ALTRAN » match."""
    return _collapse(unicodedata.normalize("NFKC", answer).casefold())


def check_activation_form(
    password: str,
    password_confirmation: str,
    secret_question: str,
    secret_answer: str,
    personal: Iterable[str | None] = (),
) -> ActivationForm:
    """Every faulty field with its reason at once, or the form ready to be hashed.

    `personal`: the names and emails of the account (see `personal_data`).
    """
    errors: dict[str, list[str]] = {}
    normalised = normalise_password(password)
    if problems := password_problems(normalised, personal):
        errors["password"] = problems
    if not password_confirmation:
        errors["password_confirmation"] = ["Confirmez le mot de passe."]
    elif normalise_password(password_confirmation) != normalised:
        errors["password_confirmation"] = ["La confirmation ne correspond pas au mot de passe."]
    question = _collapse(unicodedata.normalize("NFC", secret_question))
    if not question:
        errors["secret_question"] = ["Choisissez une question secrète."]
    elif question not in SECRET_QUESTIONS:
        errors["secret_question"] = ["Choisissez une question secrète dans la liste proposée."]
    answer = normalise_answer(secret_answer)
    if not answer:
        errors["secret_answer"] = ["La réponse à la question secrète est obligatoire."]
    elif len(answer) > ANSWER_MAX_LENGTH:
        errors["secret_answer"] = [
            f"La réponse à la question secrète doit contenir au plus {ANSWER_MAX_LENGTH} caractères."
        ]
    if errors:
        raise Invalid("Le formulaire d'activation contient des erreurs.", errors)
    return ActivationForm(normalised, question, answer)


def activated(account: Account) -> Account:
    """The first user of a new structure becomes its gestionnaire principal."""
    return replace(
        account, status=ACTIVE, role=ROLE_PRINCIPAL_MANAGER, token_hash=None, token_expires_at=None
    )
