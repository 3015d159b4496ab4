from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from cas import permissions
from cas.forms import ConnectathonImportForm
from evidence.importers import ImportRefused
from evidence.models import ConnectathonEvent
from evidence.services import connectathon_event_get_or_create, connectathon_import


@login_required
def connectathon_import_page(request: HttpRequest) -> HttpResponse:
    if not permissions.is_officer(request.user):
        raise Http404("No such page")
    form = ConnectathonImportForm(request.POST or None, request.FILES or None)
    summary = None
    errors: list = []
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                # One transaction: a refused file leaves no new event behind either.
                with transaction.atomic():
                    event = connectathon_event_get_or_create(
                        name=data["event"],
                        location=data["location"],
                        start_date=data["start_date"],
                        end_date=data["end_date"],
                        by=request.user,
                    )
                    summary = connectathon_import(event=event, stream=data["file"], by=request.user)
            except ImportRefused as exc:
                errors = exc.errors
                status = 400
        else:
            status = 400
    return render(
        request,
        "evidence/connectathon_import.html",
        {
            "form": form,
            "summary": summary,
            "errors": errors,
            "events": ConnectathonEvent.objects.all(),
        },
        status=status,
    )
