from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory
from django.views import defaults


def test_it_renders_our_404_page(client):
    response = client.get("/no/such/page/")

    assert response.status_code == 404
    assert "Page not found" in response.content.decode()


def test_it_renders_the_500_page_without_a_request_context():
    response = defaults.server_error(RequestFactory().get("/"))

    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong in keyadmin" in html
    assert "/static/keyadmin/keyadmin.css" in html


def test_it_renders_the_reason_on_the_403_page():
    request = RequestFactory().get("/")

    response = defaults.permission_denied(request, PermissionDenied("No sign-in method"))

    assert response.status_code == 403
    assert "No sign-in method" in response.content.decode()


def test_it_explains_an_expired_form():
    response = Client(enforce_csrf_checks=True).post("/sign-out/")

    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()
