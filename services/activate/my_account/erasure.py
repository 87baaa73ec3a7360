"""Erasure of a deactivated account's personal data in activate's keys (RGPD art. 5(1)(e), 17).

`erase` runs inside the deactivation's transaction (`handlers.deactivate`), whoever deactivates:
the holder from « Mon compte », an operator (`system.erase`), a structure found closed or
unknown to SIRENE, the last detachment from a structure. It erases, for the account and for each
closed account of `joined_registrations` (`rules.registrations_of`):

- the account's names, emails, survey consent, features and workspaces: its record becomes an
  anonymous one (`rules.anonymised`: ids, structures and roles, status, dates, `erased_at`), and
  it leaves the index of accounts awaiting activation under its former login;
- its credentials (password hash, secret question and answer hash) and its authenticator app;
- its « mot de passe oublié » link, its contact-email links (which hold the addresses), its latest
  sign-in challenge and the failures counted against its login email;
- its place among its structures' members.

Kept: the structures themselves (structure's), the anonymous record, and what holds ids only and
lapses by itself (activation links' records, older sign-in challenges and reset links). The
other services erase theirs on AccountDeactivated, whose `registration_ids` name the same
registrations (docs/privacy.md).
"""

from __future__ import annotations

from services.activate import domain
from services.activate.domain import Account
from services.activate.my_account import domain as rules
from services.activate.sign_in import domain as sign_in
from shared.unit_of_work import UnitOfWork


def erase(uow: UnitOfWork, account: Account) -> tuple[str, ...]:
    """Within the caller's transaction: the personal data of `account` (as it was before its
    deactivation, so that its login is known) and of its joined registrations' accounts erased.
    Returns the registrations erased."""
    erased_at = int(uow.clock())
    registrations = rules.registrations_of(account)
    for registration_id in registrations:
        found = account if registration_id == account.registration_id else uow.accounts.get(registration_id)
        if found is not None and not rules.is_erased(found):
            _erase_one(uow, found, erased_at)
    return registrations


def _erase_one(uow: UnitOfWork, account: Account, erased_at: int) -> None:
    registration_id = account.registration_id
    login = domain.login_key(account.login_email)
    reset_link = uow.password_resets.current(registration_id)
    contact_links = uow.my_account.contact_links_of(registration_id)
    challenge = uow.sign_ins.latest_of(registration_id)

    uow.accounts.erase(rules.anonymised(account), login, erased_at)
    uow.credentials.remove(registration_id)
    uow.second_factors.remove(registration_id)
    uow.password_resets.erase(registration_id, reset_link)
    uow.my_account.erase_contact_links(registration_id, contact_links)
    uow.sign_ins.forget_latest(registration_id, challenge)
    uow.sign_in_failures.forget(sign_in.throttle_key(login))
    for membership in account.memberships:
        uow.approvals.remove_member(membership.structure_id, registration_id)
