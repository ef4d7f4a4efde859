"""Create the bench's hospitals, one staff user each, and an API token per user.

Run by system_bench.py as ``python bench/seed_hospitals.py COUNT`` in ``hospital_service/``
with the service's environment (a fresh database); prints ``[{"id", "name", "token"}, ...]``
as JSON. Rows are bulk-inserted, a few statements for any COUNT (1,000 hospitals take
about a second): the users get an unusable password (they only ever use their token,
and hashing a password per user would take minutes), the tokens are made as
``AuthToken.objects.create`` makes them (knox: only the SHA-512 digest is stored).
"""

from __future__ import annotations

import json
import os
import sys
import uuid

sys.path.insert(0, os.getcwd())  # the service folder
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

NAMESPACE = uuid.UUID("0d7c1c8e-2b1f-4d6e-9a36-5be1c1f0b3a7")


def main(count: int) -> None:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.utils import timezone
    from hospitals.models import Hospital, StaffMembership
    from knox.models import AuthToken, get_digest_token
    from knox.settings import CONSTANTS, knox_settings

    user_model = get_user_model()
    names = [f"Bench Hospital {number}" for number in range(1, count + 1)]
    expiry = timezone.now() + knox_settings.TOKEN_TTL  # TOKEN_TTL_HOURS (10)
    out = []
    with transaction.atomic():
        hospitals = Hospital.objects.bulk_create(Hospital(id=uuid.uuid5(NAMESPACE, name), name=name) for name in names)
        users = user_model.objects.bulk_create(  # PostgreSQL returns their ids
            user_model(username=f"bench_staff_{number}", password=make_password(None)) for number in range(1, count + 1)
        )
        StaffMembership.objects.bulk_create(
            StaffMembership(user=user, hospital=hospital) for user, hospital in zip(users, hospitals, strict=True)
        )
        tokens = []
        for user, hospital in zip(users, hospitals, strict=True):
            digest, token = get_digest_token()
            tokens.append(
                AuthToken(token_key=token[: CONSTANTS.TOKEN_KEY_LENGTH], digest=digest, user=user, expiry=expiry)
            )
            out.append({"id": str(hospital.id), "name": hospital.name, "token": token})
        AuthToken.objects.bulk_create(tokens)
    print(json.dumps(out))


if __name__ == "__main__":
    main(int(sys.argv[1]))
