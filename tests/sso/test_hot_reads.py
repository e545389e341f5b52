"""The session and staff user of every request, read without the ORM: the same answers."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.utils import timezone

from keyadmin import hotreads
from keyadmin.models import Staff
from keyadmin.sessions import SessionStore
from keyadmin.sso.backends import StaffBackend
from tests.sso.staff import configure, staff_user


def test_the_staff_user_is_what_the_orm_reads(settings):
    configure(settings)
    user = staff_user("viewer", name="Ana Ops")

    read = hotreads.staff_user(user.pk)
    orm = get_user_model().objects.select_related("staff").get(pk=user.pk)

    for field in get_user_model()._meta.concrete_fields:
        assert getattr(read, field.attname) == getattr(orm, field.attname), field.name
    for field in Staff._meta.concrete_fields:
        assert getattr(read.staff, field.attname) == getattr(orm.staff, field.attname), field.name
    assert isinstance(read.staff.groups, list)
    assert read.staff.user is read


def test_a_user_without_staff_row_has_no_staff_and_an_unknown_one_is_none(
    django_assert_num_queries,
):
    plain = get_user_model().objects.create(username="plain")

    with django_assert_num_queries(1):
        read = hotreads.staff_user(plain.pk)
        assert not hasattr(read, "staff")  # cached as absent, no second query
    assert hotreads.staff_user(plain.pk + 1000) is None


def test_a_deactivated_user_is_refused_at_its_next_request(settings):
    configure(settings)
    user = staff_user("viewer")
    assert StaffBackend().get_user(user.pk) == user

    get_user_model().objects.filter(pk=user.pk).update(is_active=False)

    assert StaffBackend().get_user(user.pk) is None


def test_an_expired_or_unknown_session_loads_empty():
    store = SessionStore()
    store["answer"] = 42
    store.save()
    assert SessionStore(store.session_key).load() == {"answer": 42}

    Session.objects.filter(pk=store.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    expired = SessionStore(store.session_key)

    assert expired.load() == {}
    assert expired.session_key is None
    assert SessionStore("x" * 32).load() == {}
