"""`python -m system.erase` (`make erase ARGS="--login-email …"`): an operator erases an account at
its holder's request (RGPD art. 17), by its login email, its account id or its registration id.

The same as the holder's deactivation from « Mon compte », without the password: the account is
deactivated, its sessions end, its login email is free again, its personal data is erased from
activate's keys (and from those of the closed accounts it joined structures by), and
AccountDeactivated (ids only) makes identify, structure and notify erase theirs
(docs/privacy.md). A gestionnaire principal is refused, as on the page: their structure would be
left with no manager. Prints what it did; exit code 1 on a refusal.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import redis

from services.activate import domain
from services.activate.bootstrap import Activate
from services.activate.my_account import domain as rules
from services.activate.my_account import handlers
from services.activate.repository import ActivateUnitOfWork
from shared.replication import NotReplicated
from shared.settings import Settings, SettingsError
from shared.store import connect, describe

PRINCIPAL_MANAGER = (
    "Refusé : ce compte est gestionnaire principal d'une structure ; il ne peut pas être désactivé "
    "tant que la structure n'a pas d'autre gestionnaire (rien n'a été modifié)."
)


def _registration_of(uow: ActivateUnitOfWork, args: argparse.Namespace) -> str | None:
    if args.login_email is not None:
        return uow.active_logins.owner(domain.login_key(args.login_email))
    if args.account_id is not None:
        return uow.accounts.registration_of_account(args.account_id)
    return args.registration_id


def _which(args: argparse.Namespace) -> str:
    if args.login_email is not None:
        return f"l'adresse de connexion {args.login_email}"
    if args.account_id is not None:
        return f"l'identifiant de compte {args.account_id}"
    return f"l'inscription {args.registration_id}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m system.erase",
        description=(
            "Désactiver un compte et effacer ses données personnelles à la demande de la personne "
            "(RGPD, art. 17), comme la désactivation depuis « Mon compte », sans son mot de passe."
        ),
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--login-email", metavar="ADRESSE", help="l'adresse de connexion du compte actif")
    which.add_argument(
        "--account-id", metavar="ID", help="l'identifiant du compte (parcourt tous les comptes)"
    )
    which.add_argument("--registration-id", metavar="ID", help="l'identifiant de l'inscription du compte")
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"Configuration invalide : {exc}", file=sys.stderr)
        return 1
    client = connect(settings)
    uow = Activate(settings, client).uow()
    try:
        registration_id = _registration_of(uow, args)
        if registration_id is None:
            raise rules.NoActiveAccount()
        kept = handlers.deactivate_on_request(registration_id, uow)
    except rules.NoActiveAccount:
        print(
            f"Refusé : aucun compte actif ne correspond à {_which(args)} (rien n'a été modifié).",
            file=sys.stderr,
        )
        return 1
    except rules.PrincipalManagerStays:
        print(PRINCIPAL_MANAGER, file=sys.stderr)
        return 1
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        print(f"Redis injoignable ({describe(settings)}) : {exc}", file=sys.stderr)
        return 1
    except NotReplicated:
        print(
            "Effacement fait sur le serveur Redis principal, mais aucun réplica ne l'a confirmé à temps "
            "(REDIS_MIN_REPLICAS) : vérifiez les réplicas ; si le principal tombe avant, recommencez.",
            file=sys.stderr,
        )
        return 1
    finally:
        client.close()
    erased = ", ".join(rules.registrations_of(kept))
    print(f"Compte {kept.account_id} (inscription {kept.registration_id}) désactivé ; sessions fermées.")
    print(
        f"Données personnelles effacées dans activate pour les inscriptions {erased} (nom, prénom, "
        "adresses, consentement, mot de passe, question secrète, second facteur, liens)."
    )
    print(
        "AccountDeactivated publié (identifiants seulement) : identify, structure et notify effacent "
        "leurs données de ces inscriptions en le traitant."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
