import pytest
from django.urls import reverse


def test_health_reports_database_and_redis_up(client, db):
    response = client.get(reverse("health"))

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["database"], body["redis"]) == ("ok", "ok", "ok")


def test_health_is_503_when_redis_is_unreachable(client, db, settings):
    # Nothing listens on port 1: the cache call fails like a Redis outage.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    response = client.get(reverse("health"))

    assert response.status_code == 503
    assert response.json()["redis"].startswith("down")


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_health_changes_nothing_and_accepts_only_get(client, db, method):
    response = getattr(client, method)(reverse("health"))
    assert response.status_code == 405
