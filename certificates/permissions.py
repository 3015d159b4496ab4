"""Who may change a certificate's status. Certificates are public: no 404 hiding here."""

from __future__ import annotations

import rules

from cas.models import Organisation
from cas.permissions import is_officer, organisation_ids
from certificates.models import Certificate


@rules.predicate
def is_certificate_vendor(user, certificate: Certificate) -> bool:
    return certificate.application.vendor_id in organisation_ids(user, Organisation.Kind.VENDOR)


can_suspend = is_officer
can_reinstate = is_officer
can_revoke = is_officer
can_supersede = is_officer
# A vendor asks for its own certificate to be withdrawn; an officer may withdraw any.
can_withdraw = is_officer | is_certificate_vendor

rules.add_perm("certificates.suspend_certificate", can_suspend)
rules.add_perm("certificates.reinstate_certificate", can_reinstate)
rules.add_perm("certificates.revoke_certificate", can_revoke)
rules.add_perm("certificates.supersede_certificate", can_supersede)
rules.add_perm("certificates.withdraw_certificate", can_withdraw)
