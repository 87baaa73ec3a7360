"""What steps 3 and 4 offer: the workspaces (SPEC's table, in its order) and the secret questions."""

from __future__ import annotations

from dataclasses import dataclass


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
