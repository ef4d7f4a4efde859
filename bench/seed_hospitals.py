"""Create the bench's hospitals, one staff user each, and an API token per user.

Run by system_bench.py as ``python bench/seed_hospitals.py COUNT`` in ``hospital_service/``
with the service's environment; prints ``[{"id", "name", "token"}, ...]`` as JSON.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import uuid

sys.path.insert(0, os.getcwd())  # the service folder
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

NAMESPACE = uuid.UUID("0d7c1c8e-2b1f-4d6e-9a36-5be1c1f0b3a7")


def main(count: int) -> None:
    import django

    django.setup()
    from hospitals.services import ensure_hospital, ensure_staff_user
    from knox.models import AuthToken

    out = []
    for number in range(1, count + 1):
        name = f"Bench Hospital {number}"
        hospital = ensure_hospital(hospital_id=uuid.uuid5(NAMESPACE, name), name=name)
        user = ensure_staff_user(username=f"bench_staff_{number}", password=secrets.token_urlsafe(), hospital=hospital)
        _instance, token = AuthToken.objects.create(user=user)  # expires after TOKEN_TTL_HOURS (10)
        out.append({"id": str(hospital.id), "name": name, "token": token})
    print(json.dumps(out))


if __name__ == "__main__":
    main(int(sys.argv[1]))
