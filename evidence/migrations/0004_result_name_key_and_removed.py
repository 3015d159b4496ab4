from django.db import migrations, models


def fill_name_keys(apps, schema_editor):
    """Key every stored result; of rows that only differed in case, keep the newest."""
    Result = apps.get_model("evidence", "ConnectathonResult")
    seen: set[tuple[int, str, int]] = set()
    duplicates: list[int] = []
    for result in Result.objects.order_by("-imported_at", "-id").iterator(chunk_size=2000):
        key = f"{result.organisation_name.casefold()}\x1f{result.system_name.casefold()}"[:401]
        identity = (result.event_id, key, result.aipo_id)
        if identity in seen:
            duplicates.append(result.pk)
            continue
        seen.add(identity)
        result.name_key = key
        result.save(update_fields=["name_key"])
    Result.objects.filter(pk__in=duplicates).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("evidence", "0003_alias_unique_per_kind"),
    ]

    operations = [
        migrations.AddField(
            model_name="connectathonresult",
            name="name_key",
            field=models.CharField(default="", editable=False, max_length=401),
            preserve_default=False,
        ),
        migrations.RunPython(fill_name_keys, migrations.RunPython.noop),
        migrations.RemoveConstraint(
            model_name="connectathonresult",
            name="one_result_per_system_aipo",
        ),
        migrations.AddConstraint(
            model_name="connectathonresult",
            constraint=models.UniqueConstraint(
                fields=("event", "name_key", "aipo"), name="one_result_per_system_aipo_any_case"
            ),
        ),
        migrations.AddField(
            model_name="importjob",
            name="removed",
            field=models.PositiveIntegerField(default=0),
        ),
    ]
