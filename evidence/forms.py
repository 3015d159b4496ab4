from __future__ import annotations

from django import forms

from cas.models import AIPO, Organisation, Product
from evidence.models import ConnectathonAlias, ConnectathonEvent


class ConnectathonImportForm(forms.Form):
    event = forms.CharField(max_length=200, help_text="e.g. IHE-Europe Connectathon 2026")
    organiser = forms.CharField(max_length=200, required=False, help_text="e.g. IHE-Europe")
    location = forms.CharField(max_length=200, required=False, help_text="e.g. Brussels")
    start_date = forms.DateField(required=False, help_text="for a new event: YYYY-MM-DD")
    end_date = forms.DateField(required=False, help_text="for a new event: YYYY-MM-DD")
    file = forms.FileField(help_text="Gazelle 'Connectathon results summary' export, CSV or XLSX")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if not upload.name.lower().endswith((".csv", ".txt", ".xlsx", ".xlsm")):
            raise forms.ValidationError("Upload the export as a .csv or .xlsx file.")
        return upload

    def clean(self):
        data = super().clean()
        name = data.get("event", "")
        if name and not ConnectathonEvent.objects.filter(name=name).exists():
            if not data.get("start_date") or not data.get("end_date"):
                raise forms.ValidationError(
                    f"{name!r} is a new event: give its start and end dates."
                )
            if data["end_date"] < data["start_date"]:
                raise forms.ValidationError("The event cannot end before it starts.")
        return data


class AliasForm(forms.Form):
    kind = forms.ChoiceField(choices=ConnectathonAlias.Kind.choices)
    name = forms.CharField(max_length=200)
    organisation = forms.ModelChoiceField(
        queryset=Organisation.objects.filter(kind=Organisation.Kind.VENDOR)
    )
    product = forms.ModelChoiceField(queryset=Product.objects.all(), required=False)


class ClaimedAIPOsField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: AIPO) -> str:
        return str(obj)


class EvidenceUploadForm(forms.Form):
    file = forms.FileField()
    description = forms.CharField(max_length=300, required=False)
    aipos = ClaimedAIPOsField(
        queryset=AIPO.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Supports",
    )

    def __init__(self, *args, application, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["aipos"].queryset = application.claimed_aipos.with_names()


class TestReportUploadForm(EvidenceUploadForm):
    __test__ = False

    def __init__(self, *args, application, **kwargs) -> None:
        super().__init__(*args, application=application, **kwargs)
        del self.fields["description"]
        self.fields["file"].help_text = "FHIR TestReport, JSON or XML (R5, or R4B)"


class CapabilityStatementForm(forms.Form):
    file = forms.FileField(help_text="your system's FHIR CapabilityStatement, JSON")
