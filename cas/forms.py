from __future__ import annotations

from django import forms

from cas.models import Organisation


class ProductForm(forms.Form):
    vendor = forms.ModelChoiceField(queryset=Organisation.objects.none())
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    def __init__(self, *args, vendors, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["vendor"].queryset = vendors
        if vendors.count() == 1:
            self.fields["vendor"].initial = vendors.first()


class VersionForm(forms.Form):
    version = forms.CharField(max_length=60)


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)


class AssignLabForm(forms.Form):
    lab = forms.ModelChoiceField(queryset=Organisation.objects.filter(kind="lab"))
    reason = forms.CharField(required=False)


class ConflictDeclarationForm(forms.Form):
    organisation = forms.ModelChoiceField(
        queryset=Organisation.objects.filter(kind=Organisation.Kind.VENDOR),
        help_text="The vendor (or vendor group) you have a conflict of interest with.",
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)
    valid_from = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    valid_until = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Leave empty while the conflict lasts.",
    )
